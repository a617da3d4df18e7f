"""Feed discovery: the configs decide which `feeds` partitions exist.

Each tick reads `agent_mls_configs`, after loading the tenants file into it when the file
changed since the last tick (so edits made directly in MongoDB stand until then). New feeds
get their partition (the change probe then requests their first load, which creates their
collections), feeds deleted from the configs lose theirs. A tick costs one read of every
config and one write per changed tenant: no collection is created here. A disabled feed keeps its partition
(and its history in the UI) and its data; the schedules skip it. A refused entry is logged
and skipped, and the other feeds are registered as usual; a refused file changes nothing.
"""

import hashlib
import json

import dagster as dg

from mls_assets.defs.feeds.registration import load_and_register_configs, partition_changes
from mls_assets.defs.instigators import described
from mls_assets.defs.partitions import FEEDS_PARTITION_NAME
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.tenants import TenantsFileError, read_tenants_file


@described(dg.sensor, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def feed_discovery_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SensorResult:
    """Adds and removes `feeds` partitions from the feed configs (tenants file + MongoDB)."""
    database = mongo.get_database()
    previous = json.loads(context.cursor) if context.cursor and context.cursor.startswith("{") else {}
    try:
        file_hash = hashlib.sha256(read_tenants_file()).hexdigest()
    except TenantsFileError as error:
        file_hash, file_error = None, str(error)
    else:
        file_error = previous.get("error") if file_hash == previous.get("hash") else None
    changed = file_hash is not None and file_hash != previous.get("hash")
    try:
        feeds = load_and_register_configs(database, load_file=changed)
    except TenantsFileError as error:
        feeds, file_error = load_and_register_configs(database, load_file=False), str(error)
    cursor = json.dumps({"hash": file_hash, "error": file_error})
    for problem in feeds.problems:
        context.log.warning(f"feed config refused, other feeds unaffected: {problem}")
    if file_error:
        context.log.error(f"tenants file refused, configs unchanged: {file_error}")
    added, removed = partition_changes(context.instance, feeds)
    requests = []
    if added:
        requests.append(dg.AddDynamicPartitionsRequest(FEEDS_PARTITION_NAME, added))
    if removed:
        requests.append(dg.DeleteDynamicPartitionsRequest(FEEDS_PARTITION_NAME, removed))
    if not requests:
        refused = f", {len(feeds.problems)} refused" if feeds.problems else ""
        note = f"; tenants file refused: {file_error}" if file_error else ""
        return dg.SensorResult(skip_reason=f"{len(feeds.feeds)} feeds{refused}, no change{note}", cursor=cursor)
    context.log.info(f"feeds added: {len(added)} {added[:20]}, removed: {len(removed)} {removed[:20]}")
    return dg.SensorResult(dynamic_partitions_requests=requests, cursor=cursor)
