"""The code location: every asset, job and resource of mls_assets."""


import dagster as dg

from mls_assets.defs import smoke
from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.resources import mongo_resource_from_env


def build_definitions() -> dg.Definitions:
    mongo = mongo_resource_from_env()
    return dg.Definitions(
        assets=[smoke.smoke_listings, smoke.smoke_summary],
        jobs=[smoke.smoke_job],
        resources={"mongo": mongo, "io_manager": MongoIOManager(mongo=mongo)},
    )


defs = build_definitions()
