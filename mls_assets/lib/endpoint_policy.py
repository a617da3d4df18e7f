"""Which URLs may receive a feed's access token.

A bearer token goes wherever the base URL points, so the URL is checked when a config is
loaded and again before a client is built: `https` to a host on the allow list
(`MLS_ALLOWED_API_HOSTS`, comma-separated; `*.example.com` allows subdomains; default: the
Spark and RESO Web API hosts). Link-local (cloud metadata), private, multicast and
unspecified addresses are refused always; loopback only in local mode (the simulator).
Host names are not resolved here: the check needs no network and cannot be raced.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from mls_assets.lib.local_mode import is_local_mode

ALLOWED_HOSTS_VARIABLE = "MLS_ALLOWED_API_HOSTS"
DEFAULT_ALLOWED_HOSTS = (
    "replication.sparkapi.com",
    "sparkapi.com",
    "api.mlsgrid.com",
    "api-trestle.corelogic.com",
    "api.bridgedataoutput.com",
)
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class EndpointRefused(ValueError):
    """A base URL that must not receive a token."""


def allowed_hosts() -> tuple[str, ...]:
    configured = os.environ.get(ALLOWED_HOSTS_VARIABLE)
    if configured is None:
        return DEFAULT_ALLOWED_HOSTS
    return tuple(h.strip().lower() for h in configured.split(",") if h.strip())


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        if entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]:
            return True
        if host == entry:
            return True
    return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (names are not resolved)."""
    host = host.strip("[]").lower()
    address = _address(host)
    return host in LOOPBACK_NAMES or bool(address and address.is_loopback)


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def check_endpoint(url: str, *, local: bool | None = None) -> str:
    """`url` if a token may be sent there, else `EndpointRefused` with a one-line reason."""
    local = is_local_mode() if local is None else local
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise EndpointRefused(f"base URL {url!r:.80} is not a valid URL ({error})") from None
    if parts.scheme not in ("https", "http"):
        raise EndpointRefused(f"base URL {url!r:.80} must use https (got scheme {parts.scheme or 'none'!r})")
    if not host:
        raise EndpointRefused(f"base URL {url!r:.80} names no host")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("base URL must not carry credentials (user:password@host)")
    address = _address(host)
    if is_loopback_host(host):
        if local:
            return url
        raise EndpointRefused(
            f"base URL host {host} is a loopback address: only the local simulator may be reached there "
            "(local mode: MLS_LOCAL_MODE=1)"
        )
    if address is not None and (
        address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    ):
        raise EndpointRefused(f"base URL host {host} is a link-local, private or reserved address: refused")
    if parts.scheme != "https":
        raise EndpointRefused(f"base URL {url!r:.80} must use https")
    if not _host_allowed(host, allowed_hosts()):
        raise EndpointRefused(
            f"base URL host {host} is not on the allowed API hosts ({', '.join(allowed_hosts())}); "
            f"add it to {ALLOWED_HOSTS_VARIABLE} if it is a real MLS API"
        )
    return url
