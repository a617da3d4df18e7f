"""Local mode: the embedded MongoDB and the bundled MLS simulator stand in for real ones.

Only in local mode may a feed without a base URL read from the simulator (with its demo
token), and only then may tokens go to a loopback address. It is on when `MLS_LOCAL_MODE`
says so (`1`/`true`/`yes`), off when it says `0`/`false`/`no`, and otherwise on exactly
when `MONGODB_URI` is unset, i.e. when the data goes to the embedded server of this
checkout (`make run`, `make dev`). A run against a real database with a forgotten source URL
therefore fails with a configuration error instead of writing simulated listings.
"""

from __future__ import annotations

import os

LOCAL_MODE_VARIABLE = "MLS_LOCAL_MODE"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def is_local_mode() -> bool:
    value = (os.environ.get(LOCAL_MODE_VARIABLE) or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value:
        raise ValueError(f"{LOCAL_MODE_VARIABLE} must be 1 or 0 (true/false), not {value!r}")
    return not os.environ.get("MONGODB_URI")
