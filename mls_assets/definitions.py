"""The code location: every asset, check, job, schedule, sensor and resource under `defs/`,
found by Dagster's loader from the project's `[tool.dg]` settings (nothing is listed by hand).
The loader finds `pyproject.toml` above this file: the checkout's, or the image's editable
install in /opt/mls_assets."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
