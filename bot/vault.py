"""Sealed bytes: what the durable inbox and outbox keep on disk (updates, messages to send).

An update holds a person's Telegram id, name and question; a message to send holds their chat id.
Both must wait in SQLite while Telegram is unreachable, but the database never shows a raw id or a
name (README, Privacy), so they are kept sealed with a key derived from KOMEK_SECRET: encrypted
(SHAKE-256 keyed with the key and a random nonce, as a key stream) and authenticated (HMAC-SHA256,
16 bytes). Without the secret the rows are noise; with another secret `open_sealed` returns None.

Pure: no files, no clock (the nonce comes from os.urandom unless given).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os

NONCE = 16
TAG = 16


@functools.lru_cache(maxsize=8)
def _keys(secret: bytes) -> tuple[bytes, bytes]:
    return (
        hmac.new(secret, b"komek-vault:encrypt", hashlib.sha256).digest(),
        hmac.new(secret, b"komek-vault:authenticate", hashlib.sha256).digest(),
    )


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def seal_bytes(data: bytes, secret: bytes, nonce: bytes | None = None) -> bytes:
    """nonce + ciphertext + tag: `len(data) + 32` bytes."""
    nonce = nonce if nonce is not None else os.urandom(NONCE)
    encrypt, authenticate = _keys(secret)
    cipher = _xor(data, hashlib.shake_256(encrypt + nonce).digest(len(data))) if data else b""
    tag = hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()[:TAG]
    return nonce + cipher + tag


def open_sealed(blob: bytes, secret: bytes) -> bytes | None:
    """The bytes inside a seal, or None when it is damaged or was made with another secret."""
    if len(blob) < NONCE + TAG:
        return None
    nonce, cipher, tag = blob[:NONCE], blob[NONCE:-TAG], blob[-TAG:]
    encrypt, authenticate = _keys(secret)
    if not hmac.compare_digest(tag, hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()[:TAG]):
        return None
    return _xor(cipher, hashlib.shake_256(encrypt + nonce).digest(len(cipher))) if cipher else b""
