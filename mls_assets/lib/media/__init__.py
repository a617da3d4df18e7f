"""Listing photos re-hosted: each image checked and rendered as WebP variants (`images.py`),
stored on the local filesystem or S3-compatible storage (`storage.py`)."""
