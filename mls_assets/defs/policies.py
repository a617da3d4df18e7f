"""Retry and backfill policies shared by the assets."""

import os

import dagster as dg

# Network-bound steps retry as a whole after the client's own request retries gave up;
# their writes are idempotent merges, so a retried or re-executed step converges.
NETWORK_RETRY = dg.RetryPolicy(
    max_retries=int(os.environ.get("MLS_STEP_RETRIES", "3")),
    delay=float(os.environ.get("MLS_STEP_RETRY_DELAY_S", "30")),
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)

# A backfill over a date window of one feed runs as one run; the assets and the IO
# manager handle partition ranges.
SINGLE_RUN_BACKFILL = dg.BackfillPolicy.single_run()

# Bounds concurrent Spark pulls across runs (limit per pool in the instance; default 1).
SPARK_POOL = "spark_api"
