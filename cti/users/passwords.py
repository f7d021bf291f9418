"""Password hashing with the standard library's scrypt: no native dependency to build or audit.

A hash reads ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (salt and key in unpadded URL-safe base64), so the cost
can be raised later while older hashes keep verifying with their own parameters. Hashing costs tens of
milliseconds of CPU on purpose: callers on the event loop use :func:`hash_password_async` and
:func:`verify_password_async`, which run it in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets

from cti.errors import CtiError

SCHEME = "scrypt"
COST_N = 2**14
BLOCK_R = 8
PARALLEL_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MAX_COST_N = 2**20  # a stored hash asking for more is corrupt (or hostile): refuse rather than burn memory
MIN_LENGTH = 10
MAX_LENGTH = 1024


class PasswordRejected(CtiError):
    """The password policy refused a new password; the message says what to change."""

    code = "users.password_rejected"


def check_policy(password: str) -> None:
    """At least ``MIN_LENGTH`` characters: length is what makes a password hard to guess."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must have at least {MIN_LENGTH} characters (it has {len(password)})")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password must have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise PasswordRejected("the password cannot be only spaces")


def hash_password(password: str) -> str:
    """A new random salt every time, so equal passwords never give equal hashes."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, COST_N, BLOCK_R, PARALLEL_P)
    return "$".join((SCHEME, str(COST_N), str(BLOCK_R), str(PARALLEL_P), _b64(salt), _b64(key)))


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison; False (never an exception) for a malformed stored hash."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), expected)


@functools.cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so a refusal takes as long either way."""
    return hash_password(secrets.token_urlsafe(16))


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str | None) -> bool:
    """``stored`` None (no such user) still costs one full verification, then answers False."""
    if stored is None:
        await asyncio.to_thread(verify_password, password, dummy_hash())
        return False
    return await asyncio.to_thread(verify_password, password, stored)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=KEY_BYTES)


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME or not all(part.isdigit() for part in parts[1:4]):
        return None
    n, r, p = (int(part) for part in parts[1:4])
    if n < 2 or n > MAX_COST_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        return None
    try:
        return n, r, p, _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
