"""The pattern of every asset in a feed's chain, written once.

A chain asset is partitioned by feed x day (a range run covers many), backfills a range in
one run, is kinded `mongodb`, names the catalogued collection the IO manager stores it in,
holds the leases of its feeds before it reads anything (one run per feed at a time, however
it was launched), and fails clearly (`failures.fails_clearly`). `feed_asset` and
`feed_multi_asset` are `dg.asset` and `dg.multi_asset` with that filled in:

    @feed_asset(CRM_PROPERTIES, group="crm", changes_of="flattened_listings")
    def crm_linked_properties(context, flattened_listings: ChangeSet, mongo, leases): ...

`changes_of` makes that upstream asset's input a `ChangeSet` (what changed since this asset
last committed); the body commits it once its output is stored. The compute function
declares `leases: LeaseResource`: the feeds are held before its body runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from mls_assets.defs.failures import around, fails_clearly
from mls_assets.defs.partitions import feed_day_partitions
from mls_assets.defs.policies import SINGLE_RUN_BACKFILL
from mls_assets.lib.catalogue import CollectionSpec


def stored_in(spec: CollectionSpec, kinds: frozenset[str] = frozenset({"mongodb"})) -> dg.AssetOut:
    """An output of a multi-asset stored in `spec`'s collection of each feed."""
    return dg.AssetOut(description=spec.description, kinds=set(kinds), metadata={"collection": spec.name})


def changes_in(upstream: str, projection: dict[str, int] | None = None) -> dict[str, dg.AssetIn]:
    """`upstream` read as a `ChangeSet` (only `projection`'s fields, when given)."""
    metadata: dict[str, Any] = {"changes": True}
    if projection:
        metadata["projection"] = projection
    return {upstream: dg.AssetIn(metadata=metadata)}


def holding_feeds(compute: Callable) -> Callable:
    """`compute` (plain or generator) with its step's feeds held first, by its `leases`."""
    if "leases" not in inspect.signature(compute).parameters:
        raise TypeError(f"{compute.__name__} must declare `leases: LeaseResource`: a chain asset holds its feeds")

    @contextmanager
    def held(args: tuple, kwargs: dict) -> Iterator[None]:
        kwargs["leases"].hold_feeds(kwargs.get("context", args[0] if args else None))
        yield  # the leases stay held until the run ends (the lease resource releases them)

    return around(compute, held)


def _chain_step(compute: Callable) -> Callable:
    return fails_clearly(holding_feeds(compute))


def feed_asset(
    collection: CollectionSpec,
    *,
    group: str,
    changes_of: str | None = None,
    projection: dict[str, int] | None = None,
    **asset_args: Any,
) -> Callable[[Callable], dg.AssetsDefinition]:
    """`dg.asset` of one collection of each feed, partitioned by feed x day."""

    def decorate(compute: Callable) -> dg.AssetsDefinition:
        return dg.asset(
            partitions_def=feed_day_partitions,
            backfill_policy=SINGLE_RUN_BACKFILL,
            group_name=group,
            kinds={"mongodb", "python"},
            metadata={"collection": collection.name},
            ins=changes_in(changes_of, projection) if changes_of else None,
            **asset_args,
        )(_chain_step(compute))

    return decorate


def feed_multi_asset(
    outs: dict[str, CollectionSpec],
    *,
    group: str,
    changes_of: str,
    **asset_args: Any,
) -> Callable[[Callable], dg.AssetsDefinition]:
    """`dg.multi_asset` of several collections of each feed (an output per collection),
    partitioned by feed x day, reading `changes_of`'s changes."""

    def decorate(compute: Callable) -> dg.AssetsDefinition:
        return dg.multi_asset(
            partitions_def=feed_day_partitions,
            backfill_policy=SINGLE_RUN_BACKFILL,
            group_name=group,
            ins=changes_in(changes_of),
            outs={name: stored_in(spec) for name, spec in outs.items()},
            **asset_args,
        )(_chain_step(compute))

    return decorate
