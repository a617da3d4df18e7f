"""The local Dagster instance folder (`DAGSTER_HOME`), defaulting to `.dagster_home/`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mls_assets.lib.paths import project_root


def ensure_dagster_home() -> Path:
    """Set `DAGSTER_HOME` if unset and make sure it holds the project's `dagster.yaml`."""
    home = Path(os.environ.get("DAGSTER_HOME") or project_root() / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    source = project_root() / "dagster.yaml"
    target = home / "dagster.yaml"
    if source.exists() and (not target.exists() or source.read_bytes() != target.read_bytes()):
        shutil.copyfile(source, target)
    return home
