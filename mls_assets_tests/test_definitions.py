import dagster as dg

from mls_assets.definitions import defs

DEFINITIONS = defs()


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(DEFINITIONS)
    keys = {key.to_user_string() for key in DEFINITIONS.resolve_asset_graph().get_all_asset_keys()}
    assert "raw_listings" in keys and not [k for k in keys if "smoke" in k]


def test_every_asset_is_documented_grouped_and_kinded():
    for asset in DEFINITIONS.resolve_asset_graph().assets_defs:
        for key in asset.keys:
            spec = asset.specs_by_key[key]
            assert spec.description, f"{key} has no docstring"
            assert spec.group_name and spec.group_name != "default", f"{key} has no group"
            assert "mongodb" in spec.kinds, f"{key} is not kinded mongodb"


def test_the_shared_assets_carry_a_freshness_policy_and_the_feed_assets_none():
    """A policy is evaluated per asset: right for the assets shared by every tenant, wrong for a
    feed asset (one fresh feed would make all 2,000 look fresh; `feed_is_fresh` audits per feed)."""
    graph = DEFINITIONS.resolve_asset_graph()
    policies = {
        key.to_user_string(): asset.specs_by_key[key].freshness_policy
        for asset in graph.assets_defs
        for key in asset.keys
    }
    shared = {name for name, policy in policies.items() if policy is not None}
    assert shared == {"shared_cities", "shared_neighborhoods", "shared_schools", "city_market_daily"}
    assert all(policies[name].fail_window.to_timedelta().total_seconds() == 26 * 3600 for name in shared)


def test_every_asset_names_a_catalogued_collection():
    from mls_assets.lib.catalogue import BY_NAME, SHARED_BY_NAME

    for asset in DEFINITIONS.resolve_asset_graph().assets_defs:
        for key in asset.keys:
            if key.to_user_string() in ("deleted_listings_sweep", "collection_audit"):  # they report; store nothing
                continue
            collection = asset.specs_by_key[key].metadata.get("collection")
            # a feed's collections are stored by the IO manager; shared ones by their asset
            assert collection in BY_NAME or collection in SHARED_BY_NAME, f"{key} names no catalogued collection"


def test_no_feed_job_and_no_selection_of_the_chain_carries_an_audit():
    """Audits are the checks of `collection_audit`, downstream of the chain: a job of the chain,
    a job-page backfill (which adds every check of its assets) or a CLI `--select` of the
    chain's assets never carries one, so no audit runs in, or is billed to, a feed's run."""
    from mls_assets.defs.quality.checks import AUDIT_CHECKS

    audits = {key for check in AUDIT_CHECKS for key in check.check_keys}
    assert {key.asset_key.to_user_string() for key in audits} == {"collection_audit"}
    graph = DEFINITIONS.resolve_asset_graph()
    for name in ("replication_job", "expired_listings_backfill"):
        checks = set(DEFINITIONS.resolve_job_def(name).asset_layer.asset_graph.asset_check_keys)
        assert "one_status_collection" in {key.name for key in checks} and not checks & audits, name
    selected = dg.AssetSelection.from_string("+expired_listing_photos").resolve(graph)
    attached = {key for key in graph.asset_check_keys if key.asset_key in selected}
    assert attached and not attached & audits


def test_workspace_points_at_the_definitions_module():
    import yaml

    from mls_assets.lib.paths import project_root

    workspace = yaml.safe_load((project_root() / "workspace.yaml").read_text())
    modules = [entry["python_module"]["module_name"] for entry in workspace["load_from"]]
    assert modules == ["mls_assets.definitions"]


def test_every_job_runs_in_one_process_so_no_step_outlives_its_run():
    for job in DEFINITIONS.resolve_all_job_defs():
        assert job.executor_def.name == "in_process", job.name


def test_every_schedule_and_sensor_says_what_it_does_in_the_ui():
    """The Automation page shows each one's description (taken from its docstring)."""
    from mls_assets.definitions import defs

    loaded = defs()
    undescribed = [i.name for i in (*loaded.sensors, *loaded.schedules) if len(i.description or "") < 30]
    assert not undescribed
    probe = next(s for s in loaded.sensors if s.name == "change_probe_sensor")
    assert "every 30 s" in probe.description


def test_dagsters_own_tools_see_the_project():
    """`dg check defs` and `dg list defs` (the `[tool.dg]` section of pyproject.toml) load the
    same code location: every asset and sensor of it is listed."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    dg_cli = Path(sys.executable).parent / "dg"
    env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
    checked = subprocess.run([dg_cli, "check", "defs"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr[-2000:]
    listed = subprocess.run(
        [dg_cli, "list", "defs", "--json"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    seen = json.loads(listed.stdout)
    assets = {a["asset_key"] for a in seen["assets"]}
    wanted = {key.to_user_string() for key in DEFINITIONS.resolve_asset_graph().get_all_asset_keys()}
    assert assets == wanted
    assert {"change_probe_sensor", "failure_alert_sensor"} <= {s["name"] for s in seen["sensors"]}


def test_every_chain_asset_follows_the_feed_asset_pattern():
    """Partitioned by feed x day, a range backfilled in one run, its feeds held by the leases
    (`defs/feed_assets.py`); a compute function that cannot hold them is refused."""
    import pytest

    from mls_assets.defs.feed_assets import feed_asset
    from mls_assets.defs.partitions import feed_day_partitions
    from mls_assets.lib.catalogue import RAW

    chain = [a for a in DEFINITIONS.resolve_asset_graph().assets_defs if a.partitions_def == feed_day_partitions]
    assert {key.to_user_string() for a in chain for key in a.keys} >= {"raw_listings", "listing_photos"}
    for asset in chain:
        assert asset.backfill_policy == dg.BackfillPolicy.single_run(), asset.keys
        assert "leases" in asset.required_resource_keys, asset.keys
    with pytest.raises(TypeError, match="leases"):

        @feed_asset(RAW, group="listings")
        def no_leases(context: dg.AssetExecutionContext): ...
