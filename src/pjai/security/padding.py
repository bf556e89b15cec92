"""Padding sealed values to buckets, so that a ciphertext's size says little about the
text's: 64 bytes, then powers of two up to 64 KiB, then multiples of 64 KiB."""

from __future__ import annotations

import binascii

__all__ = ["b64", "bucket", "pad", "unpad"]

_MIN_BUCKET = 64


_LARGE = 64 * 1024
"""Above this, padding rounds up to a multiple of it rather than doubling."""


def bucket(size: int) -> int:
    """The padded size of ``size`` bytes of plaintext (with its 4-byte length): 64
    bytes, then powers of two up to 64 KiB, then multiples of 64 KiB."""
    needed = size + 4
    if needed > _LARGE:
        return -(-needed // _LARGE) * _LARGE
    padded = _MIN_BUCKET
    while padded < needed:
        padded *= 2
    return padded


def pad(plain: bytes) -> bytes:
    """``plain`` with its length in front, padded with zeros to its :func:`bucket`."""
    size = len(plain)
    return b"".join((size.to_bytes(4, "big"), plain, bytes(bucket(size) - size - 4)))


def b64(data: bytes) -> str:
    """``data`` in base64, on one line."""
    return binascii.b2a_base64(data, newline=False).decode()


def unpad(padded: bytes) -> bytes:
    """What :func:`pad` padded."""
    size = int.from_bytes(padded[:4], "big")
    if size > len(padded) - 4:
        raise ValueError("padding is longer than the value")
    return padded[4 : 4 + size]
