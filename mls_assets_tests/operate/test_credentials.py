"""Stored tokens: Fernet under MLS_TOKEN_KEY, several keys for rotation, clear errors that
never carry the token or its ciphertext."""

import pytest

from mls_assets.lib import credentials

TOKEN = "tok-credentials-UNIT-5521"


def test_a_token_round_trips_and_is_not_in_its_ciphertext(monkeypatch):
    monkeypatch.setenv("MLS_TOKEN_KEY", credentials.new_key())
    ciphertext = credentials.encrypt_token(TOKEN)
    assert TOKEN not in ciphertext and credentials.decrypt_token(ciphertext) == TOKEN


def test_without_a_key_nothing_is_encrypted(monkeypatch):
    monkeypatch.delenv("MLS_TOKEN_KEY", raising=False)
    with pytest.raises(credentials.TokenKeyError, match="MLS_TOKEN_KEY is not set"):
        credentials.encrypt_token(TOKEN)
    monkeypatch.setenv("MLS_TOKEN_KEY", "not-a-key")
    with pytest.raises(credentials.TokenKeyError, match="not a Fernet key"):
        credentials.encrypt_token(TOKEN)


def test_a_wrong_key_fails_clearly_and_rotation_moves_tokens_to_the_new_key(monkeypatch):
    old, new = credentials.new_key(), credentials.new_key()
    monkeypatch.setenv("MLS_TOKEN_KEY", old)
    ciphertext = credentials.encrypt_token(TOKEN)
    monkeypatch.setenv("MLS_TOKEN_KEY", new)
    with pytest.raises(credentials.TokenKeyError) as wrong:
        credentials.decrypt_token(ciphertext)
    assert ciphertext not in str(wrong.value) and TOKEN not in str(wrong.value)
    monkeypatch.setenv("MLS_TOKEN_KEY", f"{new},{old}")
    rotated = credentials.reencrypt(ciphertext)
    monkeypatch.setenv("MLS_TOKEN_KEY", new)
    assert credentials.decrypt_token(rotated) == TOKEN
