from mls_assets_tests.support.media import s3  # noqa: F401 - a fixture
