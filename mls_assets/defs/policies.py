"""Retry and backfill policies shared by the assets."""

import warnings

import dagster as dg

from mls_assets.lib.settings import SETTINGS

# Network-bound steps retry as a whole after the client's own request retries gave up on a
# transient failure (configuration and protocol errors fail at once: `defs/failures.py`);
# their writes are idempotent merges, so a retried or re-executed step converges. Exponential
# from the delay: 30 s, 90 s, 210 s by default (no jitter: the client's requests have it).
NETWORK_RETRY = dg.RetryPolicy(
    max_retries=SETTINGS.step_retries,
    delay=SETTINGS.step_retry_delay_s,
    backoff=dg.Backoff.EXPONENTIAL,
)

# A backfill over a date window of one feed runs as one run; the assets and the IO
# manager handle partition ranges. (`backfill_policy` is a beta parameter of `@asset` in
# Dagster 1.13; we rely on it knowingly, so its warning is not repeated at every import.)
SINGLE_RUN_BACKFILL = dg.BackfillPolicy.single_run()
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

# The steps that call a listings source (Spark, a RESO Web API) share this concurrency pool:
# a deployment caps how many of them run at once across all runs (`concurrency.pools` in the
# instance's dagster.yaml, or `dagster instance concurrency set mls_source_api N`); unset, it
# does not limit anything.
SOURCE_POOL = "mls_source_api"
