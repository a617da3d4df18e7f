"""The code location: every asset, job and resource of mls_assets."""

import dagster as dg

from mls_assets.defs import smoke
from mls_assets.defs.automation.crm_rescrape import crm_active_rescrape
from mls_assets.defs.automation.dead_runs import dead_run_sensor
from mls_assets.defs.automation.feed_discovery import feed_discovery_sensor
from mls_assets.defs.automation.intraday import intraday_status_sync
from mls_assets.defs.automation.nightly import nightly_sync_sensor
from mls_assets.defs.automation.sweep import (
    deleted_listings_sweep,
    deletion_sweep_job,
    weekly_deletion_sweep,
)
from mls_assets.defs.crm.linked_properties import (
    crm_link_sensor,
    crm_linked_properties,
    crm_sync_job,
)
from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.jobs import replication_job
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.listings.flattened import flattened_listings
from mls_assets.defs.listings.raw import raw_listings
from mls_assets.defs.photos.sync import photo_collections
from mls_assets.defs.quality.alerts import failure_alert_sensor
from mls_assets.defs.quality.checks import CHECKS
from mls_assets.defs.resources import (
    ClockResource,
    mongo_resource_from_env,
    spark_resource_from_env,
)
from mls_assets.defs.status.routing import status_collections

ASSETS = [raw_listings, flattened_listings, status_collections, photo_collections, crm_linked_properties,
          deleted_listings_sweep,
          smoke.smoke_listings, smoke.smoke_summary]  # fmt: skip
SCHEDULES = [intraday_status_sync, crm_active_rescrape, weekly_deletion_sweep]
SENSORS = [feed_discovery_sensor, nightly_sync_sensor, failure_alert_sensor, crm_link_sensor, dead_run_sensor]


def build_resources() -> dict:
    mongo = mongo_resource_from_env()
    return {
        "mongo": mongo,
        "io_manager": MongoIOManager(mongo=mongo),
        "spark": spark_resource_from_env(),
        "clock": ClockResource(),
        "leases": LeaseResource(mongo=mongo),
    }


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[replication_job, deletion_sweep_job, crm_sync_job, smoke.smoke_job],
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources=build_resources(),
        # One process per run: a run is one thing to lease, to watch and to kill (no step
        # process can outlive it), and a short run pays no per-step process start.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
