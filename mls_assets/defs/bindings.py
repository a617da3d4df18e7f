"""What each resource key is bound to, from the environment, and how runs execute.

One process per run (`in_process_executor`): a run is one thing to lease, to watch and to
kill (no step process can outlive it), and a short run pays no per-step process start.
"""

import dagster as dg

from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.resources import ClockResource, MediaResource, mongo_resource_from_env, source_resource_from_env


@dg.definitions
def bindings() -> dg.Definitions:
    mongo = mongo_resource_from_env()
    return dg.Definitions(
        resources={
            "mongo": mongo,
            "io_manager": MongoIOManager(mongo=mongo),
            "source": source_resource_from_env(),
            "clock": ClockResource(),
            "leases": LeaseResource(mongo=mongo),
            "media": MediaResource(),
        },
        executor=dg.in_process_executor,
    )
