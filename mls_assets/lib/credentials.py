"""Feed tokens stored encrypted in MongoDB (Fernet, keys from `MLS_TOKEN_KEY`).

`MLS_TOKEN_KEY` holds one or more Fernet keys, comma-separated: the first encrypts, every
one decrypts. Rotation: put the new key first and the old one after it, run
`mls-assets tenants rotate-key` (every stored token is re-encrypted under the new key), then
drop the old key. Without a key a token is never stored: there is no clear-text fallback.
Errors name the cause, never the token or the ciphertext.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_VARIABLE = "MLS_TOKEN_KEY"


class TokenKeyError(RuntimeError):
    """No usable key, or a stored token that none of the keys decrypts."""


def new_key() -> str:
    """A fresh Fernet key (what `MLS_TOKEN_KEY` holds)."""
    return Fernet.generate_key().decode()


def _cipher() -> MultiFernet:
    configured = [k.strip() for k in os.environ.get(KEY_VARIABLE, "").split(",") if k.strip()]
    if not configured:
        raise TokenKeyError(
            f"{KEY_VARIABLE} is not set: tokens are stored only encrypted; generate a key with "
            "`mls-assets tenants new-key` and set it in every Dagster process's environment"
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in configured])
    except (ValueError, TypeError):
        raise TokenKeyError(
            f"{KEY_VARIABLE} holds something that is not a Fernet key (32 url-safe base64 bytes; "
            "several keys are separated by commas)"
        ) from None


def encrypt_token(token: str) -> str:
    if not token or not token.strip():
        raise ValueError("the token is empty")
    return _cipher().encrypt(token.strip().encode()).decode()


def decrypt_token(ciphertext: str) -> str:
    try:
        return _cipher().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenKeyError(
            f"a stored token cannot be decrypted with the keys in {KEY_VARIABLE} (a wrong or "
            "dropped key: put the key it was stored with back, after the new one)"
        ) from None


def reencrypt(ciphertext: str) -> str:
    """The same token under the first key (raises `TokenKeyError` if no key decrypts it)."""
    try:
        return _cipher().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenKeyError(f"a stored token cannot be decrypted with the keys in {KEY_VARIABLE}") from None
