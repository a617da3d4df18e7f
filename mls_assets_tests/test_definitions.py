import dagster as dg

from mls_assets.definitions import defs


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"smoke_listings", "smoke_summary"} <= keys


def test_every_asset_is_documented_grouped_and_kinded():
    for asset in defs.resolve_asset_graph().assets_defs:
        for key in asset.keys:
            spec = asset.specs_by_key[key]
            assert spec.description, f"{key} has no docstring"
            assert spec.group_name and spec.group_name != "default", f"{key} has no group"
            assert "mongodb" in spec.kinds, f"{key} is not kinded mongodb"


def test_workspace_points_at_the_definitions_module():
    import yaml

    from mls_assets.lib.paths import project_root

    workspace = yaml.safe_load((project_root() / "workspace.yaml").read_text())
    modules = [entry["python_module"]["module_name"] for entry in workspace["load_from"]]
    assert modules == ["mls_assets.definitions"]


def test_every_job_runs_in_one_process_so_no_step_outlives_its_run():
    for job in defs.resolve_all_job_defs():
        assert job.executor_def.name == "in_process", job.name
