"""What the rest of the project needs to know about a source before it talks to it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    module: str  # defines `open_provider(feed, base_url, token, **client_options)`
    mls_id_pattern: str  # what identifies the MLS at this source
    mls_id_meaning: str
    base_url_env: str  # the deployment's default base URL for feeds without their own
    simulator_path: str  # where the bundled simulator serves this dialect
    example_url: str  # named when a feed has no base URL
    rate_limit: dict[str, Any] = field(default_factory=dict)  # defaults of `RateLimit` for its feeds
    property_types: tuple[str, ...] = ()  # a feed's default scope (none: every type)

    def open(self, feed: Any, base_url: str, token: str, **client_options: Any) -> Any:
        return importlib.import_module(self.module).open_provider(feed, base_url, token, **client_options)
