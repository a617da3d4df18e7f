"""A real PostgreSQL for the production instance config (PyPI `pgserver` ships the server in
its wheel), and a Dagster home that holds `deploy/dagster_home/dagster.yaml` pointed at it."""

import shutil
import uuid
from pathlib import Path

import pytest

from mls_assets.lib.paths import project_root

PRODUCTION_HOME = project_root() / "deploy" / "dagster_home"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def production_home(postgres, tmp_path, monkeypatch) -> Path:
    """A fresh database in the server and a DAGSTER_HOME with the production dagster.yaml."""
    name = f"dagster_{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE DATABASE {name};")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_HOME / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", postgres.get_uri(name))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home
