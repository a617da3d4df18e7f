"""Object storage for the media tests: S3 over its real API on loopback (moto's server)."""

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from mls_assets_tests.support.servers import free_port

S3_SECRET = "wJalrXUtnFEMI-not-a-real-secret"
BUCKET = "photos"


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 API on a loopback port, with a bucket `photos`; its URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        httpx.post(f"{url}/moto-api/reset").raise_for_status()  # moto's state is per process, not per server
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


def s3_keys(url: str) -> set[str]:
    """Every object key in the bucket, read through the S3 API (not through our code)."""
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys
