"""The local Dagster instance folder (`DAGSTER_HOME`), defaulting to `.dagster_home/`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mls_assets.lib.paths import project_root


def ensure_dagster_home() -> Path:
    """Set `DAGSTER_HOME` if unset and make sure it holds an instance config: the checkout's
    own `.dagster_home/` follows the project's `instance/dagster.yaml`; a `DAGSTER_HOME` chosen by the
    user (e.g. the production one of `deploy/`) keeps its own file and only gets the local
    one if it has none."""
    chosen = os.environ.get("DAGSTER_HOME")
    home = Path(chosen or project_root() / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    source = project_root() / "instance" / "dagster.yaml"
    target = home / "dagster.yaml"
    if source.exists() and (not target.exists() or (not chosen and source.read_bytes() != target.read_bytes())):
        shutil.copyfile(source, target)
    return home
