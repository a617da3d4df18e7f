"""The IO manager through real materializations: partitions, ranges, idempotence, loads."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from mls_assets.defs.partitions import feed_day_partitions
from mls_assets.defs.smoke import SMOKE_ROWS_PER_PARTITION, smoke_listings, smoke_summary

GPS_DAY = "2026-11-20|jpsrealtor.gps"
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2026-11-18|jpsrealtor.gps",
    "dagster/asset_partition_range_end": "2026-11-20|jpsrealtor.gps",
}


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [
        e for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(asset)
    ]  # fmt: skip
    metadata = events[-1].materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def test_partition_is_written_then_rewritten_idempotently(instance, mongo_resources, mongo_db):
    assets = [smoke_listings, smoke_summary]
    first = dg.materialize(assets, instance=instance, resources=mongo_resources, partition_key=GPS_DAY)
    second = dg.materialize(assets, instance=instance, resources=mongo_resources, partition_key=GPS_DAY)

    meta1 = materialization_metadata(first, "smoke_listings")
    meta2 = materialization_metadata(second, "smoke_listings")
    rows = SMOKE_ROWS_PER_PARTITION
    assert (meta1["inserted"], meta1["updated"], meta1["unchanged"]) == (rows, 0, 0)
    assert (meta2["inserted"], meta2["updated"], meta2["unchanged"]) == (0, 0, rows)
    assert meta1["dagster/partition_row_count"] == meta2["dagster/partition_row_count"] == rows
    assert meta1["dagster/table_name"] == f"{mongo_db.name}.jpsrealtor_gps_smoke_listings"

    collection = mongo_db["jpsrealtor_gps_smoke_listings"]
    assert collection.count_documents({}) == rows
    assert len(collection.distinct("listingKey")) == rows
    summary = mongo_db["jpsrealtor_gps_smoke_summary"].find_one({"partition": GPS_DAY})
    assert summary["rows"] == rows


def test_indexes_declared_by_the_asset_are_created(instance, mongo_resources, mongo_db):
    dg.materialize([smoke_listings], instance=instance, resources=mongo_resources, partition_key=GPS_DAY)
    indexes = mongo_db["jpsrealtor_gps_smoke_listings"].index_information()
    keys = {tuple(k for k, _ in spec["key"]): spec.get("unique", False) for spec in indexes.values()}
    assert keys[("listingKey",)] is True
    assert ("_partitionKey",) in keys and ("listPrice",) in keys


def test_a_feed_only_writes_its_own_tenant_collections(instance, mongo_resources, mongo_db):
    dg.materialize([smoke_listings], instance=instance, resources=mongo_resources, partition_key=GPS_DAY)
    assert mongo_db.list_collection_names() == ["jpsrealtor_gps_smoke_listings"]


def test_a_partition_range_is_handled_in_one_run(mongo_resources, mongo_db):
    with dg.instance_for_test() as one_feed:
        one_feed.add_dynamic_partitions("feeds", ["jpsrealtor.gps"])
        result = dg.materialize(
            [smoke_listings, smoke_summary], instance=one_feed, resources=mongo_resources, tags=RANGE_TAGS
        )
    assert result.success
    meta = materialization_metadata(result, "smoke_listings")
    assert meta["inserted"] == 3 * SMOKE_ROWS_PER_PARTITION
    listings = mongo_db["jpsrealtor_gps_smoke_listings"]
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        key = f"{day}|jpsrealtor.gps"
        assert listings.count_documents({"_partitionKey": key}) == SMOKE_ROWS_PER_PARTITION
        summary = mongo_db["jpsrealtor_gps_smoke_summary"].find_one({"_partitionKey": key})
        assert summary["rows"] == SMOKE_ROWS_PER_PARTITION


VERSIONED = {
    "collection": "{tenant}_{mls}_versioned",
    "key_fields": ["listingKey"],
    "version_field": "modificationTimestamp",
    "protected_fields": ["leadStatus"],
    "remove_missing": True,
}


def versioned_asset(docs: list[dict]) -> dg.AssetsDefinition:
    @dg.asset(name="versioned", partitions_def=feed_day_partitions, metadata=VERSIONED)
    def _versioned() -> pd.DataFrame:
        return pd.DataFrame(docs)

    return _versioned


def at(hours: int) -> datetime:
    return datetime(2026, 11, 20, tzinfo=UTC) + timedelta(hours=hours)


def test_guard_protection_and_removal_through_the_io_manager(instance, mongo_resources, mongo_db):
    run = lambda docs: dg.materialize(
        [versioned_asset(docs)], instance=instance, resources=mongo_resources, partition_key=GPS_DAY
    )
    run([
        {"listingKey": "A", "listPrice": 100, "modificationTimestamp": at(5), "leadStatus": "new"},
        {"listingKey": "B", "listPrice": 200, "modificationTimestamp": at(5), "leadStatus": "new"},
    ])  # fmt: skip
    stored = mongo_db["jpsrealtor_gps_versioned"]
    stored.update_one({"listingKey": "A"}, {"$set": {"leadStatus": "contacted"}})

    result = run([
        {"listingKey": "A", "listPrice": 90, "modificationTimestamp": at(1), "leadStatus": "new"},
    ])  # fmt: skip
    meta = materialization_metadata(result, "versioned")
    assert (meta["stale"], meta["updated"], meta["removed"]) == (1, 0, 1)
    doc = stored.find_one({"listingKey": "A"})
    assert (doc["listPrice"], doc["leadStatus"]) == (100, "contacted")
    assert stored.find_one({"listingKey": "B"}) is None


def test_an_upstream_slice_loads_as_list_dataframe_or_batches(instance, mongo_resources):
    seen = {}

    @dg.asset(partitions_def=feed_day_partitions)
    def as_list(smoke_listings: list) -> None:
        seen["list"] = smoke_listings

    @dg.asset(partitions_def=feed_day_partitions)
    def as_frame(smoke_listings: pd.DataFrame) -> None:
        seen["frame"] = smoke_listings

    @dg.asset(
        partitions_def=feed_day_partitions,
        ins={"smoke_listings": dg.AssetIn(metadata={"load_as": "batches"})},
    )
    def as_batches(smoke_listings) -> None:
        seen["batches"] = list(smoke_listings)

    dg.materialize(
        [smoke_listings, as_list, as_frame, as_batches],
        instance=instance,
        resources=mongo_resources,
        partition_key=GPS_DAY,
    )
    rows = SMOKE_ROWS_PER_PARTITION
    assert len(seen["list"]) == rows and isinstance(seen["list"][0], dict)
    assert "_id" not in seen["list"][0] and "_hash" not in seen["list"][0]
    assert seen["list"][0]["_partitionKey"] == GPS_DAY
    assert isinstance(seen["frame"], pd.DataFrame) and len(seen["frame"]) == rows
    assert sorted(seen["frame"]["listingKey"]) == [d["listingKey"] for d in seen["list"]]
    assert all(isinstance(batch, list) for batch in seen["batches"])
    assert sum(len(batch) for batch in seen["batches"]) == rows


def test_range_output_must_say_which_partition_each_document_belongs_to(mongo_resources):
    @dg.asset(name="unlabelled", partitions_def=feed_day_partitions)
    def unlabelled() -> list[dict]:
        return [{"_key": "x"}]

    with dg.instance_for_test() as one_feed:
        one_feed.add_dynamic_partitions("feeds", ["jpsrealtor.gps"])
        with pytest.raises(ValueError, match="must return"):
            dg.materialize([unlabelled], instance=one_feed, resources=mongo_resources, tags=RANGE_TAGS)
