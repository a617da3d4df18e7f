"""The deployment files are consistent with the code: they parse, name only images that are
built here or official ones, set only environment variables something reads, and start
modules that exist."""

import importlib
import json
import re
import tomllib
from pathlib import Path

import yaml
from dagster._core.run_coordinator import QueuedRunCoordinator

from mls_assets.defs.automation.run_requests import FEED_TAG
from mls_assets.lib.paths import project_root

ROOT = project_root()
DEPLOY = ROOT / "deploy"
OFFICIAL_IMAGES = {"postgres", "mongo"}
# Read by the images we do not build: the postgres image's own settings.
IMAGE_SETTINGS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def variables_read_by_the_code() -> set[str]:
    """Environment variables the package or the instance config reads."""
    found = set()
    # Read directly, or named by a constant or a config default (`token_env="SPARK_ACCESS_TOKEN"`).
    pattern = re.compile(r"""["']((?:MLS|SPARK|RESO|MONGODB|DAGSTER|ALERT|ACTIVE)_[A-Z0-9_]+)["']""")
    for path in (ROOT / "mls_assets").rglob("*.py"):
        found.update(pattern.findall(path.read_text()))
    for path in DEPLOY.rglob("dagster.yaml"):
        found.update(re.findall(r"env:\s*([A-Z][A-Z0-9_]+)", path.read_text()))
    return found


def dockerfile_command() -> list[str]:
    (line,) = [line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    return json.loads(line[4:])


def test_the_dockerfile_copies_what_exists_and_starts_the_code_location_module():
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    command = dockerfile_command()
    assert command[:3] == ["dagster", "api", "grpc"]
    module = importlib.import_module(command[command.index("--module-name") + 1])
    assert module.defs().resolve_job_def("replication_job")
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (server,) = [entry["grpc_server"] for entry in workspace["load_from"]]
    assert str(server["port"]) == command[command.index("--port") + 1]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'code_location_name = "{server["location_name"]}"' in pyproject


def test_compose_uses_our_image_or_official_ones_and_only_variables_that_are_read():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    built = {services[name]["image"] for name in services if "build" in services[name]}
    assert built == {"mls-assets:0.1.0"}
    assert (
        ROOT / services["code"]["build"]["context"].replace("..", ".") / services["code"]["build"]["dockerfile"]
    ).exists()
    for name, service in services.items():
        image = service["image"]
        assert image in built or image.split(":")[0] in OFFICIAL_IMAGES, f"{name} runs an unknown image {image}"
        for dependency in service.get("depends_on", []):
            assert dependency in services
    read = variables_read_by_the_code() | IMAGE_SETTINGS
    for name, service in services.items():
        for variable in service.get("environment", {}):
            assert variable in read, f"{name} sets {variable}, which nothing reads"
    commands = {name: s.get("command") for name, s in services.items()}
    assert commands["daemon"][:2] == ["dagster-daemon", "run"]
    assert commands["webserver"][0] == "dagster-webserver"
    assert commands["api"][:2] == ["mls-assets", "api"]


def test_helm_values_run_our_module_with_secrets_and_the_per_feed_queue_limit():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    importlib.import_module(args[args.index("--module-name") + 1])
    assert deployment["envSecrets"] and values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envSecrets"] == deployment["envSecrets"]
    memory = launcher["runK8sConfig"]["containerConfig"]["resources"]["requests"]["memory"]
    assert memory.endswith("Mi") and int(memory[:-2]) >= 512  # above the full sync's measured peak RSS
    queue = values["dagsterDaemon"]["runCoordinator"]
    custom = queue["config"]["customRunCoordinator"]
    assert queue["type"] == "CustomRunCoordinator"
    coordinator = getattr(importlib.import_module(custom["module"]), custom["class"])
    assert issubclass(coordinator, QueuedRunCoordinator)  # the daemon dequeues only for these
    (limit,) = values["concurrency"]["runs"]["tagConcurrencyLimits"]
    assert limit == {"key": FEED_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    for component in ("dagsterWebserver", "dagsterDaemon"):  # they import the coordinator: our image
        assert values[component]["image"]["repository"] == deployment["image"]["repository"]
    for variable in deployment["env"]:
        assert variable in variables_read_by_the_code()
    assert values["postgresql"]["enabled"] is False and values["global"]["postgresqlSecretName"]


def test_the_local_and_production_instances_limit_runs_per_feed_alike():
    local = yaml.safe_load((ROOT / "instance" / "dagster.yaml").read_text())
    production = yaml.safe_load((DEPLOY / "dagster_home" / "dagster.yaml").read_text())
    assert (
        local["concurrency"]["runs"]["tag_concurrency_limits"]
        == production["concurrency"]["runs"]["tag_concurrency_limits"]
    )
    assert (
        local["run_coordinator"]
        == production["run_coordinator"]
        == {"module": "mls_assets.operate.run_coordinator", "class": "FeedQueuedRunCoordinator"}
    )
    assert Path(DEPLOY / ".env.example").exists()


def chart_instance_settings(values: dict) -> dict:
    """What the Dagster chart renders into the instance's dagster.yaml from our values, for
    the settings compose's dagster.yaml sets too (the chart's templates/configmap-instance.yaml
    and helpers/instance/_concurrency.tpl: a falsy maxResumeRunAttempts or maxRetries is left
    out, as there)."""
    daemon, concurrency, retention = values["dagsterDaemon"], values["concurrency"], values["retention"]
    custom = daemon["runCoordinator"]["config"]["customRunCoordinator"]
    monitoring = daemon["runMonitoring"]
    assert concurrency["enabled"] and retention["enabled"] and daemon["runRetries"]["enabled"]
    rendered = {
        "run_coordinator": {"module": custom["module"], "class": custom["class"], "config": custom.get("config") or {}},
        "concurrency": {
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
            "runs": {
                "max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"],
                "tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"],
            },
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "run_retries": {"enabled": True, "max_retries": daemon["runRetries"]["maxRetries"]},
        "sensors": {"use_threads": daemon["sensors"]["useThreads"], "num_workers": daemon["sensors"]["numWorkers"]},
        "retention": {
            "schedule": {"purge_after_days": retention["schedule"]["purgeAfterDays"]},
            "sensor": {"purge_after_days": retention["sensor"]["purgeAfterDays"]},
        },
    }
    if monitoring.get("maxResumeRunAttempts"):
        rendered["run_monitoring"]["max_resume_run_attempts"] = monitoring["maxResumeRunAttempts"]
    return {**rendered, **(values.get("additionalInstanceConfig") or {})}


STORAGES = ("run_storage", "event_log_storage", "schedule_storage")
CONNECTION_FIELDS = ("postgres_url", "postgres_db")  # compose: a URL; the chart: its fields


def test_helm_and_compose_run_one_instance_alike():
    """Run slots, the per-feed limit, the source pool, monitoring, retries, sensor threads,
    retention, freshness and the pooled storages: what the chart renders from the Helm values
    equals compose's dagster.yaml (they differed: 20 vs 10 runs, no pool limit vs 8, no retry
    vs 1), but for how each reaches PostgreSQL."""

    def comparable(settings: dict) -> dict:
        found = {**settings}
        for key in STORAGES:
            config = {k: v for k, v in found[key]["config"].items() if k not in CONNECTION_FIELDS}
            found[key] = {**found[key], "config": config}
        return found

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    compose = yaml.safe_load((DEPLOY / "dagster_home" / "dagster.yaml").read_text())
    rendered = chart_instance_settings(values)
    compose["run_coordinator"].setdefault("config", {})
    assert comparable(rendered) == comparable({key: compose[key] for key in rendered})


def chart_postgres_db(values: dict) -> dict:
    """The chart's helpers/instance/_postgresql.tpl for our values."""
    postgresql = values["postgresql"]
    return {
        "username": postgresql["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": postgresql["postgresqlHost"],
        "db_name": postgresql["postgresqlDatabase"],
        "port": postgresql["service"]["port"],
        "params": postgresql.get("postgresqlParams") or {},
    }


class HelmToYaml(yaml.SafeDumper):
    """Helm's `toYaml` writes shared values out in full (no anchors)."""

    def ignore_aliases(self, data) -> bool:
        return True


def test_the_chart_rendered_instance_uses_the_pooled_storages_on_the_charts_database(tmp_path):
    """The chart writes dagster-postgres's storages itself and then `additionalInstanceConfig`
    (templates/configmap-instance.yaml): loaded as Dagster loads dagster.yaml, the last of each
    repeated storage key wins, so the instance runs our pooled storages, on the database the
    chart's own would use, with a config they accept."""
    from dagster._config import Shape, validate_config
    from dagster_shared.yaml_utils import load_yaml_from_globs

    from mls_assets.operate import postgres_storage

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    database = chart_postgres_db(values)
    charts_own = {
        key: {"module": f"dagster_postgres.{module}", "class": cls, "config": {"postgres_db": database}}
        for key, module, cls in (
            ("schedule_storage", "schedule_storage", "PostgresScheduleStorage"),
            ("run_storage", "run_storage", "PostgresRunStorage"),
            ("event_log_storage", "event_log", "PostgresEventLogStorage"),
        )
    }
    text = yaml.dump(charts_own, Dumper=HelmToYaml, sort_keys=False) + yaml.dump(
        values["additionalInstanceConfig"], Dumper=HelmToYaml
    )
    (tmp_path / "dagster.yaml").write_text(text)
    loaded = load_yaml_from_globs(str(tmp_path / "dagster.yaml"))
    for key in STORAGES:
        assert text.count(f"\n{key}:") + text.startswith(f"{key}:") == 2, key  # both are in the file
        storage = loaded[key]
        assert storage["module"] == "mls_assets.operate.postgres_storage"
        cls = getattr(postgres_storage, storage["class"])
        assert storage["config"]["postgres_db"] == database
        result = validate_config(Shape(cls.config_type()), storage["config"])
        assert result.success, [error.message for error in result.errors]


def test_the_image_has_the_run_launcher_the_chart_configures():
    """The chart's K8sRunLauncher is `dagster_k8s`: the image installs it (the `k8s` extra,
    which `make test` installs too), and our run pod settings are valid for it."""
    from dagster._config import Shape, validate_config
    from dagster_k8s import K8sRunLauncher

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert "pip install --no-cache-dir -e '.[k8s]'" in (DEPLOY / "Dockerfile").read_text()
    assert any(
        r.startswith("dagster-k8s")
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["k8s"]
    )
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    snake = {
        "containerConfig": "container_config",
        "podSpecConfig": "pod_spec_config",
        "jobConfig": "job_config",
        "podTemplateSpecMetadata": "pod_template_spec_metadata",
        "jobMetadata": "job_metadata",
        "jobSpecConfig": "job_spec_config",
    }
    config = {  # the chart's helpers/instance/_run-launcher.tpl for our values
        "load_incluster_config": True,
        "job_namespace": "mls",
        "image_pull_policy": "IfNotPresent",
        "service_account_name": "mls-dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}],
        "env_secrets": [secret["name"] for secret in launcher["envSecrets"]],
        "run_k8s_config": {snake[key]: value for key, value in launcher["runK8sConfig"].items()},
    }
    result = validate_config(Shape(K8sRunLauncher.config_type()), config)
    assert result.success, [error.message for error in result.errors]
