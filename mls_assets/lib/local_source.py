"""The local stand-in for the MLS sources (local mode only): where the bundled simulator runs
as a background service of this checkout, how it is started (`make run` and `make dev` do),
and the token it accepts.

This is the seam between production code and the simulator: the resources reach the local
source through this module and a command line, never by importing `mls_assets.simulator`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from mls_assets.lib.paths import project_root, state_dir
from mls_assets.lib.services import LocalService, ServiceInfo
from mls_assets.lib.store.embedded import default_port

HOST = "127.0.0.1"
DEFAULT_LISTINGS = 300  # per MLS: ~260 listings a demo feed, each photo of them re-hosted
# The demo's photos: every one is downloaded, rendered to three WebP variants and stored by
# `make run`, which at an MLS's 0-40 photos of 2048x1536 a listing would take hours of CPU.
DEFAULT_MAX_PHOTOS = 2
DEFAULT_PHOTO_SIDE = 1024  # larger than the medium variant: every demo photo has three distinct variants
LOCAL_SOURCE_TOKEN = "sim-demo-token"  # the token the local simulator accepts (never a real one)


def service() -> LocalService:
    port = int(os.environ.get("MLS_SIMULATOR_PORT") or default_port(project_root(), base=28100))
    listings = int(os.environ.get("MLS_SIMULATOR_LISTINGS") or DEFAULT_LISTINGS)
    home = Path(os.environ.get("MLS_SIMULATOR_HOME") or state_dir() / "simulator")
    root = f"http://{HOST}:{port}"

    def is_up() -> bool:
        try:
            return httpx.get(f"{root}/_admin/stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def command() -> list[str]:
        return [
            sys.executable,
            "-m",
            "mls_assets.cli",
            "simulator",
            "--host",
            HOST,
            "--port",
            str(port),
            "--listings",
            str(listings),
            "--live",
            "--hostile",
            os.environ.get("MLS_SIMULATOR_HOSTILE", "0"),
            "--serve-media",
            "--max-photos",
            os.environ.get("MLS_SIMULATOR_MAX_PHOTOS") or str(DEFAULT_MAX_PHOTOS),
            "--photo-max-side",
            os.environ.get("MLS_SIMULATOR_PHOTO_SIDE") or str(DEFAULT_PHOTO_SIDE),
        ]

    return LocalService(name="MLS simulator", home=home, url=f"{root}/v1", is_up=is_up, command=command)


def ensure_running() -> ServiceInfo:
    return service().ensure_running()


def root_url(base_url: str) -> str:
    """`http://host:port` for a simulator base URL `http://host:port/v1`."""
    return base_url.rsplit("/v1", 1)[0]


def admin_url(base_url: str) -> str:
    """`http://host:port/_admin` for a simulator base URL `http://host:port/v1`."""
    return root_url(base_url) + "/_admin"
