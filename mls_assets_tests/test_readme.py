"""The README and the docs (`docs/*.md`) match what ships: every `mls-assets` command in their
code blocks parses against the command line as written, and every environment variable they
name is read by the code, the Makefile or the deployment files."""

import re
import shlex

import pytest

from mls_assets.cli import build_parser
from mls_assets.lib.paths import project_root

ROOT = project_root()
README = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))


def code_block_commands() -> list[str]:
    """`mls-assets ...` invocations in the README's bash blocks (continuations joined; for
    `a|b|c` alternatives the first, `[...]` optional parts dropped)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0]
            for segment in re.split(r"\s\|\s|&&|;|\$\(|\)", line):
                if "mls-assets " not in segment:
                    continue
                command = segment.split("mls-assets ", 1)[1].strip().rstrip("&").strip()
                command = re.sub(r"\[[^\]]*\]", "", command)
                found.append(" ".join(t.split("|")[0] for t in command.split()))
    return found


COMMANDS = code_block_commands()


def test_the_readme_shows_the_commands_an_operator_needs():
    assert len(COMMANDS) >= 25
    assert {c.split()[0] for c in COMMANDS} >= {"db", "sim", "crm", "api", "api-keys", "tenants", "feeds"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_parses(command):
    try:
        args = build_parser().parse_args(shlex.split(command))
    except SystemExit as error:
        pytest.fail(f"`mls-assets {command}` does not parse (exit {error.code})")
    assert callable(args.handler)


def test_every_variable_the_readme_names_is_read_somewhere():
    from mls_assets.lib.settings import PREFIX, Settings

    corpus = "".join(p.read_text() for p in (ROOT / "mls_assets").rglob("*.py"))
    corpus += (ROOT / "Makefile").read_text() + "".join(
        p.read_text() for p in (ROOT / "deploy").rglob("*") if p.is_file()
    )
    corpus += "".join(p.read_text() for p in (ROOT / "mls_assets_tests" / "bench").rglob("*.py"))  # the benches' own
    corpus += (ROOT / "data" / "tenants.yaml").read_text()  # token variables are named by the feed configs
    corpus += " ".join(f"{PREFIX}{name.upper()}" for name in Settings.model_fields)  # read by lib/settings.py
    named = set(re.findall(r"\b((?:MLS|MONGODB|SPARK|ALERT|DAGSTER)_[A-Z0-9_]+)\b", README))
    dagster_own = {"DAGSTER_HOME", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"}  # Dagster's (the latter unused)
    missing = sorted(v for v in named - dagster_own if v not in corpus)
    assert not missing, f"the README names variables nothing reads: {missing}"


def test_the_readme_is_short_and_every_doc_it_links_exists():
    """The first screen holds the two set-up commands; the rest is in `docs/`, every page
    linked from the README, every link between pages pointing at a page that exists."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120
    assert readme.index("make run") < readme.index("make test") < 1500
    pages = sorted((ROOT / "docs").glob("*.md"))
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", readme))
    assert {p.name for p in pages} <= linked
    for page in [ROOT / "README.md", *pages]:
        for target in re.findall(r"\]\(([\w./-]+?)(?:#[\w-]+)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
