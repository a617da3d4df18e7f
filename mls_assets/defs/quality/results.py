"""Asset check results from measures: what is wrong, how much, and the first keys."""

import dagster as dg

from mls_assets.lib.quality.measures import Finding


def check_result(finding: Finding, what: str, asset: str | None = None, check_name: str | None = None,
                 severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:  # fmt: skip
    return dg.AssetCheckResult(
        asset_key=asset, check_name=check_name, passed=finding.offending == 0, severity=severity,
        description=f"{finding.offending} {what}" if finding.offending else f"no {what}",
        metadata={"offending": finding.offending, "first_offending_keys": finding.sample, **finding.details},
    )  # fmt: skip
