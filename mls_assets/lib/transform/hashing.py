"""`contentHash`: a stable fingerprint of a listing's source content.

Equal content gives an equal hash whatever the key order; fields that tick without the
listing changing (days on market) are left out, so they alone never cause a write.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from mls_assets.lib.transform.fields import VOLATILE_SOURCE_FIELDS


def source_content_hash(record: dict[str, Any]) -> str:
    fields = record.get("StandardFields")
    if isinstance(fields, dict):
        stable_fields = {k: v for k, v in fields.items() if k not in VOLATILE_SOURCE_FIELDS}
        record = {**record, "StandardFields": stable_fields}
    try:
        payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # huge ints, lone surrogates: the slow path
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
        payload = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(payload, digest_size=16).hexdigest()
