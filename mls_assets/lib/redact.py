"""Secrets out of text that leaves the process (alerts, webhooks, logs of errors).

Error messages can carry what a driver or an HTTP library saw: a connection string with its
password, a URL with a token in its query, an `Authorization` header. Known secret values
(the Spark tokens in the environment, the MongoDB URI) are replaced wherever they occur,
then the usual shapes are masked whatever their value."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

MASK = "***"
_SHAPES = (
    (re.compile(r"(?i)(://[^/\s:@]+:)[^@\s/]+@"), rf"\g<1>{MASK}@"),  # scheme://user:PASSWORD@host
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\g<1> {MASK}"),
    (re.compile(r"(?i)\b(access_token|token|api_?key|apikey|password|secret)=([^&\s\"']+)"), rf"\g<1>={MASK}"),
)
_SECRET_NAMES = re.compile(r"(TOKEN|SECRET|PASSWORD|_KEY)$|^MONGODB_URI$|^DAGSTER_PG_URL$")


def secrets_in_environment() -> list[str]:
    """Values of variables that hold secrets by their name (SPARK_*_TOKEN, MLS_TOKEN_KEY, ...)."""
    return [v for k, v in os.environ.items() if _SECRET_NAMES.search(k) and len(v) >= 6]


def redact(text: str | None, secrets: Iterable[str] | None = None) -> str | None:
    if not text:
        return text
    for secret in sorted(secrets if secrets is not None else secrets_in_environment(), key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text
