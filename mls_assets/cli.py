"""`mls-assets`: the project's command line (embedded database, demo run, and more)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _manage(service, action: str) -> int:
    """start|stop|status of a local background service."""
    if action == "start":
        info = service.ensure_running()
        verb = "started" if info.started_here else "already running"
        print(f"{service.name} {verb}: {info.url} (pid {info.pid}, files {service.home})")
    elif action == "stop":
        print(f"{service.name} stopped" if service.stop() else f"{service.name} was not running")
    else:
        info = service.status()
        if info is None:
            print(f"{service.name} not running (would serve {service.url})")
            return 3
        print(f"{service.name} running: {info.url} (pid {info.pid}, files {service.home})")
    return 0


def _db(args: argparse.Namespace) -> int:
    from mls_assets.lib.store import embedded

    return _manage(embedded.service(), args.action)


def _sim(args: argparse.Namespace) -> int:
    from mls_assets.lib import local_source

    return _manage(local_source.service(), args.action)


def _run(args: argparse.Namespace) -> int:
    from mls_assets.lib.dagster_home import ensure_dagster_home

    ensure_dagster_home()
    from mls_assets.demo import run_demo

    return run_demo()


def _simulator(args: argparse.Namespace) -> int:
    from datetime import datetime

    from mls_assets.simulator import DEMO_TOKEN, Market
    from mls_assets.simulator.market import fleet_mls_ids
    from mls_assets.simulator.media import MediaHost
    from mls_assets.simulator.server import serve

    anchor = datetime.fromisoformat(args.clock) if args.clock else None
    market = Market(
        listings=args.listings,
        seed=args.seed,
        anchor=anchor,
        follow_wall_clock=args.live,
        hostile_rate=args.hostile,
        mls_ids=fleet_mls_ids(args.mlss),
        max_photos=args.max_photos,
    )
    media_host = MediaHost(fault_rate=args.media_faults, max_side=args.photo_max_side) if args.serve_media else None
    serve(market, args.host, args.port, tokens=(DEMO_TOKEN, *args.token), media_host=media_host)
    return 0


def _crm(args: argparse.Namespace) -> int:
    import json

    from mls_assets.lib import crm
    from mls_assets.lib.store.client import get_database

    database = get_database(start=True)
    try:
        if args.action == "link":
            result = crm.link(database, args.tenant, args.property, args.mls, args.listing)
        elif args.action == "unlink":
            crm.unlink(database, args.tenant, args.property)
            result = crm.show(database, args.tenant, args.property)
        elif args.action == "sync":
            result = {"outcome": crm.sync_property(database, args.tenant, args.property)}
        else:
            result = crm.show(database, args.tenant, args.property)
    except (crm.CrmError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from mls_assets.api.app import default_app

    uvicorn.run(default_app(), host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from mls_assets.operate.dev import launch

    return launch(args.dagster_port, args.api_port).run()


def _api_keys(args: argparse.Namespace) -> int:
    import json

    from mls_assets.lib.leads import keys
    from mls_assets.lib.store.client import get_database
    from mls_assets.lib.store.naming import InvalidIdentifier

    database = get_database(start=True)
    try:
        if args.action == "create":
            if not args.tenant or not args.name:
                print("error: create needs TENANT and --name", file=sys.stderr)
                return 2
            token, record = keys.create_key(database, args.tenant, args.name)
            if args.key_only:
                print(token)
            elif args.json:
                print(json.dumps({**record.shown(), "key": token}))
            else:
                print(
                    f"API key {record.key_id} for {record.tenant} ({record.name}), shown once, keep it safe:\n{token}"
                )
        elif args.action == "revoke":
            if not args.key_id:
                print("error: revoke needs --key-id", file=sys.stderr)
                return 2
            record = keys.revoke_key(database, args.key_id, args.tenant)
            print(
                json.dumps(record.shown()) if args.json else f"revoked {record.key_id} ({record.tenant}, {record.name})"
            )
        else:
            records = [k.shown() for k in keys.list_keys(database, args.tenant)]
            if args.json:
                print(json.dumps(records))
            for r in [] if args.json else records:
                print(
                    f"{r['keyId']}  {r['tenant']:<20} {r['name']:<20} created {r['createdAt']}"
                    + (f"  REVOKED {r['revokedAt']}" if r["revokedAt"] else "")
                )
    except (keys.UnknownKey, InvalidIdentifier) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mls-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="manage the embedded MongoDB server of this checkout")
    db.add_argument("action", choices=["start", "stop", "status"])
    db.set_defaults(handler=_db)

    sim = commands.add_parser(
        "simulator", help="serve the bundled MLS simulator (Spark's replication API and a RESO Web API)"
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--listings", type=int, default=2000, help="listings per MLS")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument(
        "--mlss",
        type=int,
        default=2,
        metavar="N",
        help="MLS ids served: GPS, CRMLS, then generated ones 2021...01, ... (a fleet benchmark's 20)",
    )
    sim.add_argument("--clock", help="the simulated 'now' to start at (ISO); default today 00:00Z")
    sim.add_argument("--token", action="append", default=[], help="another accepted access token")
    sim.add_argument("--live", action="store_true", help="the market clock follows real time")
    sim.add_argument(
        "--hostile",
        type=float,
        default=0.0,
        metavar="RATE",
        help="serve this fraction of listings as hostile records (bad keys, NaN, bad UTF-8, ...)",
    )
    sim.add_argument("--serve-media", action="store_true", help="serve the photos' bytes too, at /media/")
    sim.add_argument(
        "--media-faults",
        type=float,
        default=0.0,
        metavar="RATE",
        help="with --serve-media: this fraction of photos misbehave (404, slow, truncated, corrupt, ...)",
    )
    sim.add_argument(
        "--photo-max-side", type=int, default=None, metavar="PX", help="with --serve-media: photos at most this big"
    )
    sim.add_argument("--max-photos", type=int, default=None, metavar="N", help="at most N photos a listing")
    sim.set_defaults(handler=_simulator)

    sim_service = commands.add_parser("sim", help="manage the background simulator of this checkout")
    sim_service.add_argument("action", choices=["start", "stop", "status"])
    sim_service.set_defaults(handler=_sim)

    from mls_assets.operate.cli import add_commands

    add_commands(commands)

    crm_cmd = commands.add_parser("crm", help="link CRM properties to MLS listings, sync, show")
    crm_cmd.add_argument("action", choices=["link", "unlink", "sync", "show"])
    crm_cmd.add_argument("--tenant", required=True)
    crm_cmd.add_argument("--property", required=True, help="CRM property id")
    crm_cmd.add_argument("--mls", help="MLS of the listing (link)")
    crm_cmd.add_argument("--listing", help="ListingKey (link)")
    crm_cmd.set_defaults(handler=_crm)

    api = commands.add_parser("api", help="serve the expired-leads API (OpenAPI docs at /docs)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(handler=_api)

    dev = commands.add_parser("dev", help="the Dagster UI and daemon with the leads API, stopped together on TERM/INT")
    dev.add_argument("--dagster-port", type=int, default=int(os.environ.get("DAGSTER_PORT") or 3000))
    dev.add_argument("--api-port", type=int, default=int(os.environ.get("MLS_API_PORT") or 8000))
    dev.set_defaults(handler=_dev)

    api_keys = commands.add_parser("api-keys", help="create, revoke and list tenants' API keys")
    api_keys.add_argument("action", choices=["create", "revoke", "list"])
    api_keys.add_argument("tenant", nargs="?", help="tenant id (create, list; optional scope for revoke)")
    api_keys.add_argument("--name", help="who the key is for (create)")
    api_keys.add_argument("--key-id", help="the key to revoke (revoke)")
    api_keys.add_argument("--json", action="store_true", help="machine-readable output")
    api_keys.add_argument("--key-only", action="store_true", help="create: print only the key (for scripts)")
    api_keys.set_defaults(handler=_api_keys)

    run = commands.add_parser("run", help="run the main job end to end on the embedded defaults")
    run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
