"""`contentHash`: a stable fingerprint of a listing's source content.

Equal content gives an equal hash whatever the key order; fields that tick without the
listing changing (days on market) are left out, so they alone never cause a write.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mls_assets.lib.transform.fields import VOLATILE_SOURCE_FIELDS


def source_content_hash(record: dict[str, Any]) -> str:
    fields = record.get("StandardFields")
    if isinstance(fields, dict):
        stable_fields = {k: v for k, v in fields.items() if k not in VOLATILE_SOURCE_FIELDS}
        record = {**record, "StandardFields": stable_fields}
    payload = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(payload.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
