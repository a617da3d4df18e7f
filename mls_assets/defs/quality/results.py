"""Asset check results from measures: what is wrong, how much, the first keys, and for an
audit over many feeds which feeds' data is at fault (what the alert sensor files alerts by)."""

from typing import Any

import dagster as dg

from mls_assets.lib.quality.measures import Finding

FEEDS_AT_FAULT = "feeds_at_fault"
FEEDS_LISTED = 200  # an audit names at most this many feeds at fault (the count says how many in all)


def check_result(
    finding: Finding,
    what: str,
    asset: str | None = None,
    check_name: str | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    by_feed: list[tuple[str, Finding]] | None = None,
    scope: dict[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """The result of `finding`; `by_feed` (an audit's findings per feed) adds the feeds at fault;
    `scope`: what was checked (metadata, not a broken rule)."""
    metadata: dict[str, Any] = {
        "offending": finding.offending,
        "first_offending_keys": finding.sample,
        **finding.details,
        **(scope or {}),
    }
    if by_feed is not None:
        metadata.update(feeds_metadata(by_feed))
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=check_name,
        passed=finding.offending == 0,
        severity=severity,
        description=_describe(finding, what),
        metadata=metadata,
    )


def feeds_metadata(by_feed: list[tuple[str, Finding]]) -> dict[str, Any]:
    """`feeds_at_fault` (feed -> its offending count and first keys), how many, and how many
    feeds were audited: an audit's result says whose data fails it, not which run ran it."""
    at_fault = sorted((feed, f) for feed, f in by_feed if f.offending)
    listed = {feed: {"offending": f.offending, "first_offending_keys": f.sample} for feed, f in at_fault[:FEEDS_LISTED]}
    return {
        FEEDS_AT_FAULT: dg.MetadataValue.json(listed),
        "feeds_at_fault_count": len(at_fault),
        "feeds_audited": len(by_feed),
    }


def _describe(finding: Finding, what: str) -> str:
    """`3 documents missing a required field (missing_listingId: 3)`: the rule that broke."""
    if not finding.offending:
        return f"no {what}"
    broken = ", ".join(f"{name}: {value}" for name, value in finding.details.items() if value)
    return f"{finding.offending} {what}" + (f" ({broken})" if broken else "")
