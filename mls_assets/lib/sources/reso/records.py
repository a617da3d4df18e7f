"""A RESO Property record in the raw shape every provider's records take, so that one
screen, flatten, routing, photos, history and CRM serve them all:

    {"Id": ListingKey, "StandardFields": {...the record's fields..., "Photos": [...]}}

- OData annotations (`@odata.id`, `@odata.etag`) and the MLS Grid flags (`MlgCanView`,
  `MlgCanUse`) are not listing content and are left out.
- Multi-value lookups arrive as arrays of strings (`PoolFeatures: ["Pool", "Spa"]`); they
  become the `{"Pool": true, "Spa": true}` Spark sends, which flatten joins to "Pool, Spa".
- Data Dictionary names that Spark spells differently are given Spark's name
  (`BedroomsTotal` -> `BedsTotal`) when the record does not carry both.
- `Media` (photos only, in `Order`) becomes `Photos`: `MediaKey` -> `Id`, `MediaURL` ->
  `UriLarge` (one full-size URL; MLS Grid's expire and may not be hot-linked),
  `ShortDescription` -> `Caption`, `MediaModificationTimestamp` -> `ModificationTimestamp`,
  the first in order is primary unless one says `PreferredPhotoYN`.
- Status lookups sent as enumeration names (`ActiveUnderContract`, `ComingSoon`) get the
  spelling the rest of the pipeline uses (`Active Under Contract`, `Coming Soon`).
- A record with `MlgCanView: false` is a deletion (`is_deletion`), never a listing.

Anything that is not an object is passed on as it is: the screen quarantines it with the
reason, as it does a Spark record.
"""

from __future__ import annotations

from typing import Any

HIDDEN_FIELDS = frozenset({"MlgCanView", "MlgCanUse", "Media"})
SPARK_NAMES = {"BedroomsTotal": "BedsTotal"}
STATUS_FIELDS = ("StandardStatus", "MlsStatus")
STATUS_SPELLINGS = {"ActiveUnderContract": "Active Under Contract", "ComingSoon": "Coming Soon"}
PHOTO_CATEGORIES = frozenset({"Photo", "Photos", "Image"})


def is_deletion(record: Any) -> bool:
    """MLS Grid marks a listing that must be removed with `MlgCanView: false`."""
    return isinstance(record, dict) and record.get("MlgCanView") is False


def to_raw(record: Any) -> Any:
    """The record in the pipeline's raw shape (see the module's docstring)."""
    if not isinstance(record, dict):
        return record
    fields: dict[str, Any] = {}
    for name, value in record.items():
        if name in HIDDEN_FIELDS or (isinstance(name, str) and name.startswith("@odata.")):
            continue
        if type(value) is list and value and all(type(v) is str for v in value):
            value = dict.fromkeys(value, True)
        fields[name] = value
    for name in STATUS_FIELDS:
        if fields.get(name) in STATUS_SPELLINGS:
            fields[name] = STATUS_SPELLINGS[fields[name]]
    for reso_name, spark_name in SPARK_NAMES.items():
        if reso_name in fields and spark_name not in fields:
            fields[spark_name] = fields.pop(reso_name)
    media = record.get("Media")
    if media is not None:
        fields["Photos"] = photos(media) if isinstance(media, list) else media  # not a list: flatten warns
    raw: dict[str, Any] = {"StandardFields": fields}
    if isinstance(record.get("ListingKey"), str):
        raw["Id"] = record["ListingKey"]
    return raw


def photos(media: list[Any]) -> list[Any]:
    """The photos among `Media`, in `Order`, as Spark photo objects."""
    kept = [m for m in media if not isinstance(m, dict) or m.get("MediaCategory") in (None, *PHOTO_CATEGORIES)]
    kept.sort(key=_order)
    preferred = any(isinstance(m, dict) and m.get("PreferredPhotoYN") is True for m in kept)
    result: list[Any] = []
    for index, item in enumerate(kept):
        if not isinstance(item, dict):
            result.append(item)  # flatten warns about it and keeps the others
            continue
        photo: dict[str, Any] = {
            "Id": item.get("MediaKey"),
            "UriLarge": item.get("MediaURL"),
            "Primary": item.get("PreferredPhotoYN") is True if preferred else index == 0,
        }
        if item.get("ShortDescription") is not None:
            photo["Caption"] = item["ShortDescription"]
        if item.get("MediaModificationTimestamp") is not None:
            photo["ModificationTimestamp"] = item["MediaModificationTimestamp"]
        result.append(photo)
    return result


def _order(item: Any) -> tuple[int, float]:
    order = item.get("Order") if isinstance(item, dict) else None
    if isinstance(order, int | float) and not isinstance(order, bool):
        return (0, float(order))
    return (1, 0.0)
