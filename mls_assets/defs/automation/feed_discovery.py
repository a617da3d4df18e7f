"""Feed discovery: the configs decide which `feeds` partitions exist.

Each tick reads `agent_mls_configs` (after loading the tenants file into it when the file
changed since the last tick, so edits made directly in MongoDB stand until then), creates
a new feed's collections and indexes (seed 002: "auto-create indexes when new agent
added"), adds partitions for new feeds and removes those of feeds deleted from the
configs. A disabled feed keeps its partition (and its history in the UI) and its data; the
schedules skip it.
"""

import hashlib

import dagster as dg

from mls_assets.defs.feeds import load_and_register_configs
from mls_assets.defs.partitions import FEEDS_PARTITION_NAME
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.tenants import tenants_file_path


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def feed_discovery_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SensorResult:
    """Adds and removes `feeds` partitions from the feed configs (tenants file + MongoDB)."""
    database = mongo.get_database()
    file_hash = hashlib.sha256(tenants_file_path().read_bytes()).hexdigest()
    feeds = load_and_register_configs(database, load_file=file_hash != context.cursor)
    configured = {str(f.key) for f in feeds}
    current = set(context.instance.get_dynamic_partitions(FEEDS_PARTITION_NAME))
    added, removed = sorted(configured - current), sorted(current - configured)
    requests = []
    if added:
        requests.append(dg.AddDynamicPartitionsRequest(FEEDS_PARTITION_NAME, added))
    if removed:
        requests.append(dg.DeleteDynamicPartitionsRequest(FEEDS_PARTITION_NAME, removed))
    if not requests:
        return dg.SensorResult(skip_reason=f"{len(configured)} feeds, no change", cursor=file_hash)
    context.log.info(f"feeds added: {added}, removed: {removed}")
    return dg.SensorResult(dynamic_partitions_requests=requests, cursor=file_hash)
