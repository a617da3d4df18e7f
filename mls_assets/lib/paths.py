"""Where the checkout and its git-ignored runtime state live.

Everything a local run creates (embedded database files, logs, the Dagster instance)
goes under the checkout so that a fresh clone is self-contained and `rm -rf .state`
resets it.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout: `MLS_ASSETS_HOME`, else the folder holding the package, else cwd."""
    configured = os.environ.get("MLS_ASSETS_HOME")
    if configured:
        return Path(configured).resolve()
    package_parent = Path(__file__).resolve().parents[2]
    if (package_parent / "pyproject.toml").exists():
        return package_parent
    return Path.cwd().resolve()


def state_dir() -> Path:
    """Git-ignored runtime state of this checkout (`.state/`)."""
    path = project_root() / ".state"
    path.mkdir(parents=True, exist_ok=True)
    return path
