"""The layout's rules, read from the import statements: `lib/` is plain Python, every source
is its own room over a shared filter tree, production code never imports the simulator and
uses only Dagster's public API."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mls_assets"


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (lazy imports count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(under: str) -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in files:
        bad = sorted(n for n in imports_of(path) if n.startswith(forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


def test_lib_is_plain_python():
    assert offenders(modules("lib"), ("dagster", "mls_assets.defs", "mls_assets.api", "mls_assets.operate")) == {}


def test_production_code_never_imports_the_simulator():
    """Local mode reaches it through `lib/local_source.py` and a command line; the one
    exception is the CLI's `simulator` command, which is how it is started."""
    production = [p for p in PACKAGE.rglob("*.py") if "simulator" not in p.relative_to(PACKAGE).parts]
    found = offenders(production, ("mls_assets.simulator",))
    assert set(found) <= {"cli.py"}, found


@pytest.mark.parametrize("source", ["spark", "reso"])
def test_a_source_is_one_room_that_needs_no_other(source):
    others = tuple(
        f"mls_assets.lib.sources.{p.name}"
        for p in (PACKAGE / "lib/sources").iterdir()
        if p.is_dir() and p.name not in (source, "__pycache__")
    )
    assert others and offenders(modules(f"lib/sources/{source}"), others) == {}


def test_the_shared_filter_tree_and_interface_know_no_source():
    shared = [p for p in (PACKAGE / "lib/sources").glob("*.py") if p.name != "__init__.py"]
    assert offenders(shared, ("mls_assets.lib.sources.spark", "mls_assets.lib.sources.reso")) == {}


def test_production_code_uses_dagster_public_api_only():
    """Dagster's private modules (`dagster._...`) change without notice between releases."""
    assert offenders(sorted(PACKAGE.rglob("*.py")), ("dagster._", "dagster_postgres._", "dagster_k8s._")) == {}


def test_the_simulator_depends_on_no_dagster_code():
    assert offenders(modules("simulator"), ("dagster", "mls_assets.defs", "mls_assets.api", "mls_assets.operate")) == {}


def test_no_test_module_or_conftest_imports_a_conftest():
    """Shared fixtures and helpers live in `mls_assets_tests/support/`; a conftest imports
    from there, never from another conftest."""
    tests = Path(__file__).resolve().parent
    found = {}
    for path in sorted(tests.rglob("*.py")):
        if conftests := sorted(name for name in imports_of(path) if "conftest" in name):
            found[str(path.relative_to(tests))] = conftests
    assert found == {}
