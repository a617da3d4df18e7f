"""The documented command-line backfill (docs/automation.md), exactly as printed, works on any date: it is run here
as a user would run it, against the test server and a simulator whose market is now."""

import os
import re
import subprocess
from datetime import UTC, datetime

import dagster as dg
import yaml

from mls_assets.lib.paths import project_root
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.simulator import CRMLS_MLS_ID, Market, SimulatorServer

FEED = "jpsrealtor.crmls"


def readme_backfill_command() -> str:
    block = next(
        b
        for b in re.findall(r"```bash\n(.*?)```", (project_root() / "docs" / "automation.md").read_text(), flags=re.S)
        if "asset materialize" in b
    )
    (command,) = [line for line in block.splitlines() if "asset materialize" in line]
    return command


def test_the_readme_backfill_command_materializes_the_last_days_of_expired_listings_and_photos(
    mongo_uri, mongo_db, tmp_path
):
    command = readme_backfill_command()
    assert "expired_listing_photos" in command and "$(date" in command  # no date written into it
    market = Market(listings=60, seed=5, anchor=datetime.now(UTC), mls_ids=(CRMLS_MLS_ID,))
    with SimulatorServer(market) as simulator:
        tenants = tmp_path / "tenants.yaml"
        tenants.write_text(
            yaml.safe_dump(
                {
                    "tenants": [
                        {
                            "tenant_id": "jpsrealtor",
                            "feeds": [
                                {
                                    "mls": "crmls",
                                    "mls_id": CRMLS_MLS_ID,
                                    "base_url": simulator.url,
                                    "token_env": "SPARK_TOKEN_UNSET",
                                }
                            ],
                        }
                    ]
                }
            )
        )
        sync_configs(mongo_db, load_feeds(tenants))
        home = tmp_path / "dagster_home"
        home.mkdir()
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            instance.add_dynamic_partitions("feeds", [FEED])
        env = {
            **os.environ,
            "MONGODB_URI": mongo_uri,
            "MONGODB_DATABASE": mongo_db.name,
            "MLS_TENANTS_FILE": str(tenants),
            "DAGSTER_HOME": str(home),
        }
        # the README's export sets DAGSTER_HOME to the checkout's; the test's instance stands in for it
        done = subprocess.run(
            ["bash", "-c", command], cwd=project_root(), env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr[-3000:]
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        days = {
            r.partition_key.split("|")[0]
            for r in instance.fetch_materializations(dg.AssetKey("expired_listing_photos"), limit=100).records
        }
    assert len(days) == 7  # one materialization per day of the window, photos included
    assert mongo_db["jpsrealtor_crmls_raw_listings"].count_documents({}) > 0
