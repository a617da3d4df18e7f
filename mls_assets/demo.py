"""`make run`: replicate the demo feeds end to end on the embedded defaults.

Starts (or reuses) the embedded MongoDB and the simulator (one market, served as Spark's
replication API and as a RESO Web API), loads the demo feeds (Spark and RESO side by side),
materializes the whole replication chain for each feed over the last days with the
simulator's market 72 hours back, then moves the market to now and syncs today so that
status moves show, and prints what each feed holds. Runs are recorded in the local Dagster
instance, so they appear in `make dev`'s UI.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx

MAIN_JOB = "replication_job"
# The full event stream is in the UI (`make dev`); the terminal gets warnings and the summary.
# The UI plots a partitioned asset's metadata over its last 120 partitions (Dagster 1.13).
MARKET_PLOT_DAYS = 120
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SUMMARY = (
    ("raw", "raw_listings"),
    ("flattened", "flattened_listings"),
    ("rejects", "rejects"),
    ("active", "listings"),
    ("closed", "closed_listings"),
    ("expired", "expired_listings"),
    ("photos", "photos"),
    ("exp.photos", "expired_photos"),
    ("history", "status_history"),
)


def _run(
    job: dg.JobDefinition, instance: dg.DagsterInstance, feed: str, first: str, last: str, now: datetime | None
) -> bool:
    """The chain over days `first`..`last` of one feed, as one run (each day partition gets
    its own counts); `now` is the pipeline's clock (the simulator's market time)."""
    from mls_assets.defs.partitions import feed_day_key, range_tags

    run_config = dict(QUIET_CONSOLE)
    if now is not None:
        run_config["resources"] = {"clock": {"config": {"fixed_now": now.isoformat()}}}
    tags = {"mls/feed": feed}
    if first == last:
        partition = {"partition_key": str(feed_day_key(feed, first))}
    else:
        partition = {}
        tags |= range_tags(feed, first, last)
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, tags=tags, run_config=run_config, **partition
    )
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    days = first if first == last else f"{first}..{last}"
    print(f"  {feed} {days}: {'ok' if result.success else 'FAILED'}", flush=True)
    for evaluation in failed_checks:
        print(
            f"    check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
            f"({evaluation.severity.value}): {evaluation.description}"
        )
    return result.success


def run_demo() -> int:
    from mls_assets.definitions import defs as definitions
    from mls_assets.defs.feeds.registration import sync_feed_partitions
    from mls_assets.defs.partitions import FIRST_DAY
    from mls_assets.lib import local_source
    from mls_assets.lib.local_mode import is_local_mode
    from mls_assets.lib.store.client import get_database
    from mls_assets.lib.tenants import TenantsFileError, read_configs

    if not is_local_mode() and not os.environ.get("SPARK_API_BASE_URL"):
        print(
            "refused: MONGODB_URI names a real server but no Spark URL is set; the demo would write simulated "
            "listings there. Set SPARK_API_BASE_URL, or MLS_LOCAL_MODE=1 if that server is a scratch one."
        )
        return 2
    database = get_database(start=True)
    simulator = None if os.environ.get("SPARK_API_BASE_URL") else local_source.ensure_running()
    instance = dg.DagsterInstance.get()
    try:
        loaded, added, _ = sync_feed_partitions(instance, database)
    except TenantsFileError as error:
        print(f"refused: {error}")
        return 2
    for problem in loaded.problems:
        print(f"feed config refused (other feeds go on): {problem}")
    feeds = [str(f.key) for f in read_configs(database) if f.enabled]
    print(f"feeds: {', '.join(feeds)} (newly registered: {', '.join(added) or 'none'})")

    days_back = int(os.environ.get("MLS_RUN_DAYS", "7"))
    now = datetime.now(UTC)
    # The market starts 72 hours back and then moves to now, so that the last sync shows three
    # days of status moves; the pipeline's clock follows it (a clock ahead of the market would
    # see timestamps from the future, which the screen quarantines).
    start = now - timedelta(hours=72) if simulator is not None else None
    if start is not None:
        httpx.post(f"{local_source.admin_url(simulator.url)}/clock", json={"now": start.isoformat()}).raise_for_status()
    last = (start or now).date()
    # the first load is one range run over the last days: with no cursor yet it pulls the
    # whole feed once, and each day partition reports its own listings
    first = max(last - timedelta(days=days_back), FIRST_DAY).isoformat()
    job = definitions().resolve_job_def(MAIN_JOB)
    ok = True
    print(f"first load: the whole feed in one run over the day partitions {first} .. {last}")
    for feed in feeds:
        ok &= _run(job, instance, feed, first, last.isoformat(), start)
    if start is not None:
        moved = httpx.post(f"{local_source.admin_url(simulator.url)}/clock", json={"now": now.isoformat()}).json()
        print(f"simulator clock moved 72h ahead to {moved['now']}: syncing today from the cursor")
        for feed in feeds:
            ok &= _run(job, instance, feed, now.date().isoformat(), now.date().isoformat(), now)
    ok &= _run_reference(definitions(), instance, now)
    ok &= _run_media(definitions(), instance, database, feeds, now)
    _print_summary(database, read_configs(database))
    _print_media(database, read_configs(database), now)
    _print_reference(database, now)
    print("OK" if ok else "FAILED: see the runs in the UI (make dev)")
    return 0 if ok else 1


def _run_reference(definitions: dg.Definitions, instance: dg.DagsterInstance, now: datetime) -> bool:
    """The shared places, then the market figures of the last `MARKET_PLOT_DAYS` days in one
    run (the window the UI's partition plot of `city_market_daily` spans; the reference
    automation sensor keeps today's up to date under `make dev`)."""
    run_config = {**QUIET_CONSOLE, "resources": {"clock": {"config": {"fixed_now": now.isoformat()}}}}
    from mls_assets.defs.partitions import day_partitions

    first = max(now.date() - timedelta(days=MARKET_PLOT_DAYS - 1), day_partitions.start.date()).isoformat()
    window = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": now.date().isoformat()}
    ok = True
    for job, tags, label in (("shared_places_job", {}, ""), ("city_market_daily_job", window, f" {first}...today")):
        result = definitions.resolve_job_def(job).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, tags=tags
        )
        print(f"  {job}{label}: {'ok' if result.success else 'FAILED'}", flush=True)
        ok &= result.success
    return ok


MEDIA_RUNS_AT_MOST = 20  # a feed's media runs, each within MLS_MEDIA_PHOTOS_PER_RUN photos


def _run_media(
    definitions: dg.Definitions, instance: dg.DagsterInstance, database, feeds: list[str], now: datetime
) -> bool:
    """Each feed's photos re-hosted (`media_job`), run after run until none waits: what
    `photo_media_sensor` does under `make dev`."""
    from mls_assets.defs.media.assets import MEDIA_BACKLOG
    from mls_assets.defs.partitions import feed_day_key

    job = definitions.resolve_job_def("media_job")
    run_config = {**QUIET_CONSOLE, "resources": {"clock": {"config": {"fixed_now": now.isoformat()}}}}
    ok = True
    for feed in feeds:
        for _ in range(MEDIA_RUNS_AT_MOST):
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config=run_config,
                partition_key=str(feed_day_key(feed, now.date().isoformat())),
            )
            ok &= result.success
            waiting = database[MEDIA_BACKLOG].find_one({"_id": feed})
            if not result.success or waiting is None or waiting["dueAt"].replace(tzinfo=UTC) > now:
                break
        print(f"  media_job {feed}: {'ok' if result.success else 'FAILED'}", flush=True)
    return ok


def _print_media(database, feeds, now: datetime) -> None:
    from mls_assets.lib.media.storage import storage_from_settings
    from mls_assets.lib.media.sync import coverage

    storage = storage_from_settings()
    print(f"\nphotos re-hosted as WebP (large 1920x1440, medium 800x600, thumbnail 200x150) in {storage.where}:")
    for feed in feeds:
        shown = coverage(database, feed.key, now)
        failed = ", ".join(f"{reason} {n}" for reason, n in shown["failed_by_reason"].items())
        print(
            f"  {feed.key}: {shown['with_variants']} of {shown['photos']} photos ({shown['coverage']:.0%})"
            + (f"; failed: {failed}" if failed else "")
        )
    example = database[feeds[0].collection("photos")].find_one({"media.status": "ok"}) if feeds else None
    if example:
        print(f"  e.g. listing {example['listingKey']}: {example['media']['variants']['medium']['url']}")


def _print_reference(database, now: datetime) -> None:
    from mls_assets.lib.reference.market import MARKET_DAILY, day_start

    counts = {
        name: database[name].count_documents({"active": True})
        for name in ("shared_cities", "shared_neighborhoods", "shared_schools")
    }
    top = list(database[MARKET_DAILY].find({"day": day_start(now.date())}).sort("active", -1).limit(3))
    print(
        f"\nshared by every tenant: {counts['shared_cities']} cities, {counts['shared_neighborhoods']} neighborhoods, "
        f"{counts['shared_schools']} schools; market today, largest cities:"
    )
    for row in top:
        price = f"${row['medianListPrice']:,.0f}" if row.get("medianListPrice") else "-"
        print(
            f"  {row['city']}, {row['state']}: {row['active']} active, {row['pending']} pending, "
            f"{row['new']} new, median list price {price}"
        )


def _print_summary(database, feeds) -> None:
    header = ("feed", "source", *(label for label, _ in SUMMARY))
    rows = [header]
    for feed in feeds:
        rows.append(
            (
                str(feed.key),
                feed.provider,
                *(database[feed.collection(name)].estimated_document_count() for _, name in SUMMARY),
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    print()
    for row in rows:
        print("  ".join(str(v).rjust(w) if i > 1 else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
