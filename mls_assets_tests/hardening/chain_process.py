"""Runs the replication chain in a process of its own, for the kill and overlap tests.

    python -m mls_assets_tests.hardening.chain_process '<json spec>'

The spec names the MongoDB URI and database, the feed, the partition day, the simulated
"now", and optionally `kill_at_write`: the process SIGKILLs itself just before sending its
n-th write command to the feed's collections (a crash at a chosen point, no timing
involved), and `wait_for_go`: it starts only when a line arrives on stdin (runs that start
together). Prints `{"success": ..., "run_id": ..., "writes": n}` when it finishes, `writes`
being the write commands it sent to the feed's collections.
"""

import json
import os
import signal
import sys

from pymongo import monitoring

WRITES = {"insert", "update", "delete", "findAndModify"}


class KillAtWrite(monitoring.CommandListener):
    def __init__(self, database: str, prefix: str, at: int | None) -> None:
        self.database, self.prefix, self.at, self.seen = database, prefix, at, 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in WRITES and event.database_name == self.database:
            if str(event.command.get(event.command_name, "")).startswith(self.prefix):
                self.seen += 1
                if self.seen == self.at:
                    os.kill(os.getpid(), signal.SIGKILL)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def main() -> int:
    spec = json.loads(sys.argv[1])
    import dagster as dg

    from mls_assets.lib.store.naming import FeedKey

    writes = KillAtWrite(spec["database"], FeedKey.parse(spec["feed"]).collection(""), spec.get("kill_at_write"))
    monitoring.register(writes)

    from mls_assets.defs.io_manager import MongoIOManager
    from mls_assets.defs.leases import LeaseResource
    from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
    from mls_assets_tests.support.chain import CHAIN

    if spec.get("wait_for_go"):
        sys.stdin.readline()
    mongo = MongoResource(uri=spec["uri"], database=spec["database"])
    resources = {
        "mongo": mongo,
        "io_manager": MongoIOManager(mongo=mongo),
        "source": SourceResource(
            retry_floor_s=0.01, retry_cap_s=0.05, timeout_s=10, page_size=spec.get("page_size", 1000)
        ),
        "clock": ClockResource(fixed_now=spec["now"]),
        "leases": LeaseResource(mongo=mongo, wait_s=120),
    }
    instance = dg.DagsterInstance.get()
    if spec["feed"] not in instance.get_dynamic_partitions("feeds"):
        instance.add_dynamic_partitions("feeds", [spec["feed"]])
    result = dg.materialize(
        CHAIN,
        instance=instance,
        resources=resources,
        raise_on_error=False,
        partition_key=f"{spec['day']}|{spec['feed']}",
        tags={"mls/feed": spec["feed"]},
    )
    print(json.dumps({"success": result.success, "run_id": result.run_id, "writes": writes.seen}), flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
