"""What evaluates the reference assets' automation conditions."""

import dagster as dg

reference_automation_sensor = dg.AutomationConditionSensorDefinition(
    "reference_automation_sensor",
    target=dg.AssetSelection.groups("reference"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    emit_backfills=False,
    description="Updates the shared places and today's market figures after feeds' listings change "
    "(the reference assets' automation conditions: any upstream feed-day updated, none in progress).",
)
