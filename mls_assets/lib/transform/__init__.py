"""Listing transforms: clean, flatten, derive, hash, validate, quarantine. Pure, no I/O."""

from mls_assets.lib.transform.batch import TransformResult, transform_record, transform_records
from mls_assets.lib.transform.flatten import flatten
from mls_assets.lib.transform.hashing import source_content_hash
from mls_assets.lib.transform.photos import extract_photos
from mls_assets.lib.transform.screen import clean, listing_key, screen
from mls_assets.lib.transform.status import StatusClass, status_class

__all__ = [
    "TransformResult",
    "StatusClass",
    "clean",
    "extract_photos",
    "flatten",
    "listing_key",
    "screen",
    "source_content_hash",
    "status_class",
    "transform_record",
    "transform_records",
]
