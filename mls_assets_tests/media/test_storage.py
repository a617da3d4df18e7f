"""Media storage: a local folder, and S3 over its real API on loopback (moto's server)."""

import boto3
import pytest

from mls_assets.lib.media.storage import (
    MediaStorageError,
    listing_prefix,
    media_key,
    safe_segment,
    storage_from_settings,
)
from mls_assets.lib.settings import Settings
from mls_assets.lib.store.naming import FeedKey
from mls_assets_tests.support.media import S3_SECRET as SECRET

FEED = FeedKey("jpsrealtor", "gps")


def exercise(storage) -> None:
    keys = [media_key(FEED, "L1", "P1", "v1", variant) for variant in ("large", "thumbnail")]
    for key in keys:
        storage.put(key, b"RIFF" + key.encode())
    other = media_key(FEED, "L2", "P1", "v1", "large")
    storage.put(other, b"other")
    assert sorted(storage.keys(listing_prefix(FEED, "L1"))) == sorted(keys)
    assert storage.get(keys[0]) == b"RIFF" + keys[0].encode()
    assert storage.delete(keys) == 2
    assert not any(storage.exists(key) for key in keys) and storage.exists(other)


def test_a_local_folder_by_default(tmp_path):
    storage = storage_from_settings(Settings(media_dir=str(tmp_path / "media")))
    exercise(storage)
    key = media_key(FEED, "L2", "P1", "v1", "large")
    assert storage.url(key) == (tmp_path / "media").resolve().as_uri() + "/" + key
    assert (tmp_path / "media" / key).read_bytes() == b"other"


def test_s3_through_its_api_with_the_public_url_and_content_type(s3):
    settings = Settings(
        media_bucket="photos",
        media_prefix="media/",
        media_region="us-east-1",
        media_endpoint=s3,
        media_public_url="https://cdn.example.com/media",
    )
    storage = storage_from_settings(settings)
    exercise(storage)
    key = media_key(FEED, "L2", "P1", "v1", "large")
    head = boto3.client("s3", endpoint_url=s3, region_name="us-east-1").head_object(Bucket="photos", Key=f"media/{key}")
    assert head["ContentType"] == "image/webp"
    assert storage.url(key) == f"https://cdn.example.com/media/{key}"
    assert SECRET not in repr(storage) and SECRET not in storage.where


def test_plain_http_is_refused_off_loopback_before_any_request():
    with pytest.raises(MediaStorageError, match="loopback"):
        storage_from_settings(Settings(media_bucket="photos", media_endpoint="http://10.20.30.40:9000"))
    with pytest.raises(MediaStorageError):
        storage_from_settings(Settings(media_bucket="photos", media_endpoint="ftp://127.0.0.1:21"))


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "a/b", "", " ", "x" * 300, "ключ", "a%2Fb", "CON"])
def test_any_id_is_one_safe_segment_and_distinct(hostile):
    segment = safe_segment(hostile)
    assert "/" not in segment and ".." not in segment and 0 < len(segment) <= 51
    assert segment != safe_segment(hostile + "x")
    key = media_key(FEED, hostile, hostile, "v", "large")
    assert key.count("/") == 4 and key.startswith(listing_prefix(FEED, hostile))
