"""The code location: every asset, check, job, schedule, sensor and resource under `defs/`,
found by Dagster's loader (nothing is listed by hand)."""

import dagster as dg

import mls_assets.defs


@dg.definitions
def defs() -> dg.Definitions:
    return dg.components.load_defs(mls_assets.defs)
