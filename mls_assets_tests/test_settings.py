"""The MLS_* settings: read once, checked, and a bad value names its variable."""

import pytest

from mls_assets.lib.settings import Settings, SettingsError, load_settings


def test_the_defaults_are_the_documented_ones(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"MLS_{name.upper()}", raising=False)
    settings = load_settings()
    assert (settings.probe_interval_s, settings.business_hours_utc, settings.intraday_cron) == (
        30,
        (15, 3),
        "*/15 * * * *",
    )


def test_values_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MLS_PROBE_INTERVAL_S", "30")
    monkeypatch.setenv("MLS_BUSINESS_HOURS_UTC", "9-17")
    settings = load_settings()
    assert (settings.probe_interval_s, settings.business_hours_utc) == (30.0, (9, 17))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLS_PROBE_INTERVAL_S", "abc"),
        ("MLS_PROBE_INTERVAL_S", "-5"),
        ("MLS_INTRADAY_CRON", "every minute"),
        ("MLS_BUSINESS_HOURS_UTC", "15"),
        ("MLS_BUSINESS_HOURS_UTC", "15-30"),
        ("MLS_REJECT_RATE_THRESHOLD", "2"),
        ("MLS_PARTITIONS_START_DATE", "yesterday"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_every_setting_is_documented():
    from pathlib import Path

    docs = "".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "docs").glob("*.md"))
    assert [name for name in Settings.model_fields if f"`MLS_{name.upper()}`" not in docs] == []
