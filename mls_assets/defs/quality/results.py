"""Asset check results from measures: what is wrong, how much, and the first keys."""

import dagster as dg

from mls_assets.lib.quality.measures import Finding


def check_result(finding: Finding, what: str, asset: str | None = None, check_name: str | None = None,
                 severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:  # fmt: skip
    return dg.AssetCheckResult(
        asset_key=asset, check_name=check_name, passed=finding.offending == 0, severity=severity,
        description=_describe(finding, what),
        metadata={"offending": finding.offending, "first_offending_keys": finding.sample, **finding.details},
    )  # fmt: skip


def _describe(finding: Finding, what: str) -> str:
    """`3 documents missing a required field (missing_listingId: 3)`: the rule that broke."""
    if not finding.offending:
        return f"no {what}"
    broken = ", ".join(f"{name}: {value}" for name, value in finding.details.items() if value)
    return f"{finding.offending} {what}" + (f" ({broken})" if broken else "")
