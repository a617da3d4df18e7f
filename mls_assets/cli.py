"""`mls-assets`: the project's command line (embedded database, demo run, and more)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _db(args: argparse.Namespace) -> int:
    from mls_assets.lib.store import embedded

    if args.action == "start":
        info = embedded.ensure_running()
        verb = "started" if info.started_here else "already running"
        print(f"embedded MongoDB {verb}: {info.uri} (pid {info.pid}, data {info.data_dir})")
    elif args.action == "stop":
        stopped = embedded.stop()
        print("embedded MongoDB stopped" if stopped else "embedded MongoDB was not running")
    else:
        info = embedded.status()
        if info is None:
            settings = embedded.settings_from_env()
            print(f"embedded MongoDB not running (would listen on {settings.uri})")
            return 3
        print(f"embedded MongoDB running: {info.uri} (pid {info.pid}, data {info.data_dir})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from mls_assets.lib.dagster_home import ensure_dagster_home

    ensure_dagster_home()
    from mls_assets.demo import run_demo

    return run_demo()


def _simulator(args: argparse.Namespace) -> int:
    from datetime import datetime

    from mls_assets.lib.spark.simulator import DEMO_TOKEN, Market
    from mls_assets.lib.spark.simulator.server import serve

    anchor = datetime.fromisoformat(args.clock) if args.clock else None
    market = Market(listings=args.listings, seed=args.seed, anchor=anchor)
    serve(market, args.host, args.port, tokens=(DEMO_TOKEN, *args.token))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mls-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="manage the embedded MongoDB server of this checkout")
    db.add_argument("action", choices=["start", "stop", "status"])
    db.set_defaults(handler=_db)

    sim = commands.add_parser("simulator", help="serve the bundled Spark replication API simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--listings", type=int, default=2000, help="listings per MLS")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--clock", help="the simulated 'now' to start at (ISO); default today 00:00Z")
    sim.add_argument("--token", action="append", default=[], help="another accepted access token")
    sim.set_defaults(handler=_simulator)

    run = commands.add_parser("run", help="run the main job end to end on the embedded defaults")
    run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
