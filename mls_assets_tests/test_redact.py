"""Secrets never leave in alert text: known values from the environment and the usual shapes."""

from mls_assets.lib.redact import redact


def test_known_secrets_and_secret_shapes_are_masked(monkeypatch):
    monkeypatch.setenv("SPARK_ACME_TOKEN", "tok-1234567890")
    text = (
        "GET https://api.example/v1/listings?_filter=x&access_token=abcdef123 failed; "
        "mongodb://app:s3cretpass@db.internal:27017/mls refused; Authorization: Bearer eyJhbGciOiJIUzI1 "
        "token tok-1234567890 expired"
    )
    cleaned = redact(text)
    for secret in ("abcdef123", "s3cretpass", "eyJhbGciOiJIUzI1", "tok-1234567890"):
        assert secret not in cleaned
    assert "mongodb://app:***@db.internal:27017/mls" in cleaned and "access_token=***" in cleaned
    assert redact("nothing secret here: 404 on /v1/listings") == "nothing secret here: 404 on /v1/listings"
