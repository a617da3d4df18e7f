"""The IO manager with real assets on the real server: partitions, ranges, feeds, changes."""

import gc
from datetime import datetime

import dagster as dg
import pytest

from mls_assets.defs.io_manager import Streamed
from mls_assets.defs.partitions import feed_day_key, feed_day_partitions
from mls_assets.lib.catalogue import FLATTENED, RAW
from mls_assets.lib.gc_during_runs import RUN_THRESHOLDS
from mls_assets.lib.store.changes import ChangeSet

GPS, OTHER = "jpsrealtor.gps", "otheragent.gps"
DAY = "2026-11-20"


def docs_for(feed: str, day: str, count: int = 5, price: int = 1) -> list[dict]:
    at = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    return [
        {"listingKey": f"{day}-{i}", "modificationTimestamp": at, "price": price, "feed": feed} for i in range(count)
    ]


PRICES: dict[str, int] = {}
COUNTS: dict[str, int] = {}  # documents per day (5 unless said)


@dg.asset(partitions_def=feed_day_partitions, metadata={"collection": RAW.name})
def produced(context: dg.AssetExecutionContext):
    """One feed-day's documents (a mapping per partition in a range run)."""
    return {
        key: docs_for(*reversed(key.split("|")), count=COUNTS.get(key.split("|")[0], 5), price=PRICES.get(key, 1))
        for key in context.partition_keys
    }


@dg.asset(
    partitions_def=feed_day_partitions,
    metadata={"collection": FLATTENED.name},
    ins={"produced": dg.AssetIn(metadata={"changes": True})},
)
def consumed(context: dg.AssetExecutionContext, produced: ChangeSet):
    """What changed upstream, copied; fails before committing when asked to."""
    seen = []

    def copies():
        for _, batch in produced.batches():
            seen.extend(doc["listingKey"] for doc in batch)
            yield from batch

    yield dg.Output(Streamed(copies(), lambda: {"seen": len(seen)}))
    if PRICES.get("fail_consumer"):
        raise RuntimeError("the consumer fails after storing, before committing")
    produced.commit(context.run.run_id)


def run(instance, resources, *assets, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(assets), instance=instance, resources=resources, **kwargs)


def meta(result, asset: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def meta_by_partition(result, asset: str) -> dict[str, dict]:
    return {
        str(m.partition): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(asset)
    }


def test_a_partition_is_written_then_rewritten_idempotently(instance, mongo_resources, mongo_db):
    key = str(feed_day_key(GPS, DAY))
    first = meta(run(instance, mongo_resources, produced, partition_key=key), "produced")
    second = meta(run(instance, mongo_resources, produced, partition_key=key), "produced")
    assert (first["inserted"], first["unchanged"]) == (5, 0) and (second["inserted"], second["unchanged"]) == (0, 5)
    assert first["dagster/table_name"] == f"{mongo_db.name}.jpsrealtor_gps_raw_listings"
    assert first["dagster/partition_row_count"] == 5 and first["documents_by_day"] == {DAY: 5}
    assert mongo_db["jpsrealtor_gps_raw_listings"].count_documents({}) == 5
    indexes = mongo_db["jpsrealtor_gps_raw_listings"].index_information().values()
    assert any(i["key"] == [("listingKey", 1)] and i.get("unique") for i in indexes)


def test_a_range_run_writes_each_day_and_a_feed_only_its_own_collections(mongo_resources, mongo_db):
    COUNTS.update({"2026-11-19": 2, "2026-11-20": 0})
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("feeds", [GPS, OTHER])
            tags = {
                "dagster/asset_partition_range_start": str(feed_day_key(GPS, "2026-11-18")),
                "dagster/asset_partition_range_end": str(feed_day_key(GPS, "2026-11-20")),
            }
            result = run(instance, mongo_resources, produced, tags=tags)
    finally:
        COUNTS.clear()
    by_partition = meta_by_partition(result, "produced")
    # every day reports its own figures, not the run's totals
    own = {key.split("|")[0]: (m["documents"], m["dagster/partition_row_count"]) for key, m in by_partition.items()}
    assert own == {"2026-11-18": (5, 5), "2026-11-19": (2, 2), "2026-11-20": (0, 0)}
    first = by_partition[str(feed_day_key(GPS, "2026-11-18"))]
    assert first["run_inserted"] == 7 and first["run_partitions"] == 3 and "inserted" not in first
    assert first["run_documents_by_day"] == {"2026-11-18": 5, "2026-11-19": 2}
    feed_collections = [n for n in mongo_db.list_collection_names() if n.endswith("raw_listings")]
    assert feed_collections == ["jpsrealtor_gps_raw_listings"]  # nothing of the other tenant's feed


def test_a_partition_row_count_is_what_the_day_holds_not_what_the_run_wrote(instance, mongo_resources, mongo_db):
    """A second run that writes part of a day reports the day's stored documents."""
    key = str(feed_day_key(GPS, DAY))
    run(instance, mongo_resources, produced, partition_key=key)
    COUNTS[DAY] = 2
    try:
        second = meta(run(instance, mongo_resources, produced, partition_key=key), "produced")
    finally:
        COUNTS.clear()
    assert (second["documents"], second["dagster/partition_row_count"]) == (2, 5)


def test_a_consumer_gets_what_changed_since_it_last_committed(instance, mongo_resources, mongo_db):
    key = str(feed_day_key(GPS, DAY))
    run(instance, mongo_resources, produced, consumed, partition_key=key)
    copies = mongo_db["jpsrealtor_gps_flattened_listings"]
    assert copies.count_documents({}) == 5
    nothing = run(instance, mongo_resources, produced, consumed, partition_key=key)
    assert meta(nothing, "consumed")["seen"] == 0  # nothing changed upstream: nothing to read
    PRICES[key] = 2
    try:
        changed = run(instance, mongo_resources, produced, consumed, partition_key=key)
    finally:
        PRICES.clear()
    assert meta(changed, "consumed")["seen"] == 5 and copies.count_documents({"price": 2}) == 5


def test_a_consumer_that_fails_midway_resumes_where_it_stopped(instance, mongo_resources, mongo_db):
    key = str(feed_day_key(GPS, DAY))
    run(instance, mongo_resources, produced, partition_key=key)
    PRICES["fail_consumer"] = 1
    try:
        failed = run(
            instance, mongo_resources, produced, consumed, partition_key=key, raise_on_error=False, selection=[consumed]
        )
    finally:
        PRICES.clear()
    assert not failed.success
    again = run(instance, mongo_resources, produced, consumed, partition_key=key, selection=[consumed])
    assert meta(again, "consumed")["seen"] == 5  # the changes were not lost with the failed run
    done = run(instance, mongo_resources, produced, consumed, partition_key=key, selection=[consumed])
    assert meta(done, "consumed")["seen"] == 0


def test_a_plain_input_is_the_partitions_slice(instance, mongo_resources):
    @dg.asset(partitions_def=feed_day_partitions, metadata={"collection": FLATTENED.name})
    def sliced(context: dg.AssetExecutionContext, produced):
        documents = [doc for batch in produced for doc in batch]
        assert {d["listingKey"] for d in documents} == {f"{DAY}-{i}" for i in range(5)}
        return documents

    key = str(feed_day_key(GPS, DAY))
    run(instance, mongo_resources, produced, partition_key=key)
    run(instance, mongo_resources, produced, partition_key=str(feed_day_key(GPS, "2026-11-19")))
    assert run(instance, mongo_resources, produced, sliced, partition_key=key, selection=[sliced]).success


def test_an_asset_without_a_catalogued_collection_fails_clearly(instance, mongo_resources):
    @dg.asset(partitions_def=feed_day_partitions, metadata={"collection": "nowhere"})
    def uncatalogued():
        return []

    with pytest.raises(Exception, match="names no catalogued collection"):
        run(instance, mongo_resources, uncatalogued, partition_key=str(feed_day_key(GPS, DAY)))


COLLECTOR: dict[str, object] = {}


@dg.asset(partitions_def=feed_day_partitions, metadata={"collection": RAW.name})
def watches_the_collector(context: dg.AssetExecutionContext):
    """One feed-day's documents; notes how the garbage collector is set while the run goes on."""
    COLLECTOR.update(threshold=gc.get_threshold(), frozen=gc.get_freeze_count())
    return docs_for(GPS, DAY)


def test_a_run_tunes_the_garbage_collector_and_puts_it_back(instance, mongo_resources):
    before = gc.get_threshold()
    result = run(instance, mongo_resources, watches_the_collector, partition_key=str(feed_day_key(GPS, DAY)))
    assert result.success
    assert COLLECTOR["threshold"] == RUN_THRESHOLDS and COLLECTOR["frozen"] > 10_000  # the definitions, the modules
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
