"""`mls-assets tenants ...` and `mls-assets feeds ...`: onboarding, pausing, re-scheduling and
removing agents' feeds, and reading their status, history and errors, while the Dagster
daemon runs (configs live in MongoDB: the next sensor tick sees every change). Tokens are
read from standard input or a prompt, never from an argument, and never shown."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

import yaml

from mls_assets.lib.sources import PROVIDERS


def _database():
    from mls_assets.lib.store.client import get_database

    return get_database(start=True)


def _instance():
    import dagster as dg

    from mls_assets.lib.dagster_home import ensure_dagster_home

    ensure_dagster_home()
    return dg.DagsterInstance.get()


def _feed_key(value: str):
    from mls_assets.lib.store.naming import FeedKey

    return FeedKey.parse(value)


def _read_token(args: argparse.Namespace) -> str | None:
    if getattr(args, "token_stdin", False):
        token = sys.stdin.readline().strip()
    elif getattr(args, "token_prompt", False):
        token = getpass.getpass("Access token (not echoed): ").strip()
    else:
        return None
    if not token:
        raise ValueError("no token was given")
    return token


def _print(args: argparse.Namespace, value: Any, human: str | None = None) -> None:
    if args.json:
        print(json.dumps(value, default=str))
    elif human is not None:
        print(human)
    else:
        print(yaml.safe_dump(json.loads(json.dumps(value, default=str)), sort_keys=False, width=120).rstrip())


def _tenants(args: argparse.Namespace) -> int:
    from mls_assets.lib import credentials, tenant_admin
    from mls_assets.lib.tenants import FeedConfig

    if args.action == "new-key":
        key = credentials.new_key()
        _print(args, {"key": key}, human=key)
        return 0
    database = _database()
    if args.action == "add":
        config = FeedConfig(
            tenant_id=args.tenant,
            mls=args.mls,
            provider=args.provider,
            mls_id=args.mls_id,
            base_url=args.base_url,
            token_env=args.token_env,
            sync_schedule=args.cron,
            max_listings=args.max_listings,
            enforce_quota=args.enforce_quota,
            enabled=not args.disabled,
            region=args.region,
            property_types=args.property_types,
        )
        added = tenant_admin.add_feed(database, config, _read_token(args))
        _print(
            args,
            tenant_admin.tenants(database, added.tenant_id)[0],
            human=f"added feed {added.key} ({'token stored encrypted' if added.token_ciphertext else 'token from $' + added.token_env}); "
            "the feed discovery sensor registers it within a minute",
        )
    elif args.action == "list":
        found = tenant_admin.tenants(database)
        lines = [
            f"{t['tenantId']:<24} {f['mls']:<10} {f['provider']:<6} {'enabled ' if f.get('syncEnabled') else 'DISABLED'} "
            f"{f.get('syncSchedule', ''):<14} {f.get('currentListings', '-')!s:>8}/{f.get('maxListings') or '-'!s:<8} "
            f"{f['token']}"
            for t in found
            for f in t["feeds"]
        ]
        _print(args, found, human="\n".join(lines) or "no tenants")
    elif args.action == "show":
        found = tenant_admin.tenants(database, args.tenant)
        if not found:
            raise tenant_admin.AdminError(f"tenant {args.tenant} is not configured")
        _print(args, found[0])
    elif args.action == "remove":
        if args.purge and not args.yes:
            answer = input(
                f"Drop every collection of {args.tenant}{'.' + args.mls if args.mls else ''}? "
                "Type the tenant id to confirm: "
            )
            if answer.strip() != args.tenant:
                print("not confirmed: nothing was removed", file=sys.stderr)
                return 2
        _print(args, tenant_admin.remove(database, args.tenant, args.mls, purge=args.purge))
    elif args.action == "rotate-key":
        count = tenant_admin.rotate_tokens(database)
        _print(
            args,
            {"reencrypted": count},
            human=f"re-encrypted {count} stored tokens under the first key of {credentials.KEY_VARIABLE}",
        )
    return 0


def _feeds(args: argparse.Namespace) -> int:
    from mls_assets.lib import tenant_admin

    if args.action == "sync":
        return _sync_partitions()
    database = _database()
    if args.action in ("enable", "disable", "set-cron", "set-rate", "set-quota", "set-token"):
        key = _feed_key(args.feed)
        changes: dict[str, Any] = {}
        if args.action in ("enable", "disable"):
            changes["enabled"] = args.action == "enable"
        elif args.action == "set-cron":
            changes["sync_schedule"] = args.cron
        elif args.action == "set-rate":
            current = tenant_admin.feed(database, key).rate_limit
            changes["rate_limit"] = {**current.model_dump(), "requests": args.requests, "per_seconds": args.per_seconds}
        elif args.action == "set-quota":
            changes["max_listings"] = None if args.max_listings.lower() == "none" else int(args.max_listings)
            if args.enforce is not None:
                changes["enforce_quota"] = args.enforce
        token = _read_token(args) if args.action == "set-token" else None
        if args.action == "set-token" and token is None:
            raise ValueError("set-token reads the token from --token-stdin or --token-prompt")
        updated = tenant_admin.update_feed(database, key, token=token, **changes)
        shown = tenant_admin.tenants(database, key.tenant)[0]
        _print(
            args,
            next(f for f in shown["feeds"] if f["mls"] == key.mls),
            human=f"feed {updated.key}: {args.action} done (in effect at the next sensor tick or run)",
        )
        return 0
    from mls_assets.defs.leases import reap_dead_runs
    from mls_assets.operate import status

    instance = _instance()
    reap_dead_runs(instance, database)  # a killed run is shown dead, with or without the daemon
    if args.action == "status":
        keys = (
            [_feed_key(args.feed)]
            if args.feed
            else [_feed_key(f"{t['tenantId']}.{f['mls']}") for t in tenant_admin.tenants(database) for f in t["feeds"]]
        )
        found = [status.feed_status(instance, database, key) for key in keys]
        _print(args, found if not args.feed else found[0])
    elif args.action == "history":
        _print(args, status.feed_history(instance, _feed_key(args.feed), args.limit))
    elif args.action == "errors":
        _print(args, status.feed_errors(instance, database, _feed_key(args.feed), args.limit))
    elif args.action == "sync-now":
        from datetime import UTC, datetime

        from mls_assets.operate.runs import RunSubmissionError, submit_chain_runs

        key = _feed_key(args.feed)
        tenant_admin.feed(database, key)  # a configured feed, or a clear error
        day = args.day or datetime.now(UTC).date().isoformat()
        try:
            run_ids = submit_chain_runs([(str(key), day)], trigger="operator", workspace=args.workspace)
        except RunSubmissionError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        _print(
            args,
            {"feed": str(key), "day": day, "runIds": run_ids},
            human=f"queued run {run_ids[0]} for {key} day {day} (it starts when no other run of the feed is "
            "in progress; the daemon must be running)",
        )
    elif args.action == "cancel":
        cancelled = status.cancel_feed_runs(instance, _feed_key(args.feed))
        _print(
            args, {"feed": args.feed, "cancelled": cancelled}, human=f"cancelled {len(cancelled)} runs of {args.feed}"
        )
    return 0


def _sync_partitions() -> int:
    from mls_assets.defs.feeds.registration import sync_feed_partitions
    from mls_assets.lib.tenants import TenantsFileError

    try:
        feeds, added, removed = sync_feed_partitions(_instance(), _database())
    except TenantsFileError as error:
        print(f"error: {error}; nothing was changed", file=sys.stderr)
        return 2
    for problem in feeds.problems:
        print(f"refused: {problem}", file=sys.stderr)
    print(f"feeds registered: {len(feeds.feeds)} valid, added {added or 'none'}, removed {removed or 'none'}")
    return 1 if feeds.problems else 0


def _guarded(handler):
    """Operator errors are one line on stderr and exit code 2, never a traceback."""

    def run(args: argparse.Namespace) -> int:
        from pydantic import ValidationError

        from mls_assets.lib.credentials import TokenKeyError
        from mls_assets.lib.tenant_admin import AdminError
        from mls_assets.lib.tenants import describe_error

        try:
            return handler(args)
        except ValidationError as error:
            print(f"error: {describe_error(error)}", file=sys.stderr)
        except (AdminError, TokenKeyError, ValueError, LookupError) as error:
            print(f"error: {error}", file=sys.stderr)
        return 2

    return run


def _token_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--token-stdin", action="store_true", help="read the token from standard input (one line)")
    source.add_argument("--token-prompt", action="store_true", help="ask for the token (not echoed)")


def add_commands(commands: argparse._SubParsersAction) -> None:
    tenants = commands.add_parser("tenants", help="onboard, list, show and remove tenants (agents) and their feeds")
    actions = tenants.add_subparsers(dest="action", required=True)
    actions.add_parser("new-key", help="print a new key for MLS_TOKEN_KEY")
    add = actions.add_parser("add", help="add a tenant's feed (the token stored encrypted, or read from --token-env)")
    add.add_argument("tenant")
    add.add_argument("--mls", required=True, help="MLS id, e.g. gps")
    add.add_argument("--provider", default="spark", choices=sorted(PROVIDERS), help="where its listings come from")
    add.add_argument(
        "--mls-id",
        required=True,
        help="what names the MLS at the provider: Spark's 26-digit id, RESO's OriginatingSystemName",
    )
    add.add_argument("--base-url", help="the provider's endpoint (default: SPARK_API_BASE_URL or RESO_API_BASE_URL)")
    add.add_argument(
        "--property-types",
        type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
        help="comma-separated (default: Spark A,B,C; RESO every type)",
    )
    add.add_argument("--token-env", default="SPARK_ACCESS_TOKEN", help="variable holding the token, if not stored")
    add.add_argument("--cron", default="0 2 * * *", help="nightly sync schedule (UTC)")
    add.add_argument("--max-listings", type=int, help="the agent's listing quota")
    add.add_argument("--enforce-quota", action="store_true", help="stop inserting new listings beyond the quota")
    add.add_argument("--region")
    add.add_argument("--disabled", action="store_true", help="add it paused")
    _token_options(add)
    actions.add_parser("list", help="every tenant's feeds, one line each")
    show = actions.add_parser("show", help="a tenant's configs (no secrets)")
    show.add_argument("tenant")
    remove = actions.add_parser("remove", help="remove a tenant (or one feed); data kept unless --purge")
    remove.add_argument("tenant")
    remove.add_argument("--mls", help="only this feed")
    remove.add_argument("--purge", action="store_true", help="also drop the collections (asks to confirm)")
    remove.add_argument("--yes", action="store_true", help="confirm --purge without asking")
    actions.add_parser("rotate-key", help="re-encrypt every stored token under the first key of MLS_TOKEN_KEY")
    for sub in actions.choices.values():
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    tenants.set_defaults(handler=_guarded(_tenants))

    feeds = commands.add_parser("feeds", help="feed partitions, settings, status, history, errors, runs")
    actions = feeds.add_subparsers(dest="action", required=True)
    actions.add_parser("sync", help="tenants file -> configs, collections, partitions")
    for name, text in (("enable", "resume a feed"), ("disable", "pause a feed (its schedules and sensors skip it)")):
        actions.add_parser(name, help=text).add_argument("feed", help="tenant.mls")
    cron = actions.add_parser("set-cron", help="a feed's nightly sync schedule (5-field cron, UTC)")
    cron.add_argument("feed")
    cron.add_argument("cron")
    rate = actions.add_parser("set-rate", help="a feed's request budget at its source")
    rate.add_argument("feed")
    rate.add_argument("--requests", type=int, required=True)
    rate.add_argument("--per-seconds", type=float, required=True)
    quota = actions.add_parser("set-quota", help="a feed's maxListings (a number, or none)")
    quota.add_argument("feed")
    quota.add_argument("max_listings")
    quota.add_argument(
        "--enforce",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop (or not) inserting new listings beyond the quota",
    )
    token = actions.add_parser("set-token", help="store a feed's token, encrypted (MLS_TOKEN_KEY)")
    token.add_argument("feed")
    _token_options(token)
    status = actions.add_parser(
        "status", help="last sync, cursor, counts, runs in progress, last failure, failed checks"
    )
    status.add_argument("feed", nargs="?", help="tenant.mls (default: every feed)")
    for name, text in (("history", "recent runs and their counts"), ("errors", "recent rejects and failed runs")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("feed")
        sub.add_argument("--limit", type=int, default=10)
    now = actions.add_parser("sync-now", help="queue a run of the chain for a feed (visible in the UI)")
    now.add_argument("feed")
    now.add_argument("--day", help="the day partition (default: today, UTC)")
    now.add_argument("--workspace", help="workspace.yaml of the code location (default: the checkout's)")
    actions.add_parser("cancel", help="cancel a feed's queued and running runs").add_argument("feed")
    for sub in actions.choices.values():
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    feeds.set_defaults(handler=_guarded(_feeds))
