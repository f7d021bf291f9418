"""Short-lived signed URLs, for what a browser fetches without headers (``<audio src=...>``).

The API hands a signed URL only to an authenticated caller with the route's role; whoever holds the URL
may then GET that one path until it expires. The signature covers the path and the expiry (HMAC-SHA256).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TypeVar
from urllib.parse import urlencode

DEFAULT_TTL_S = 900
SIGNED_ATTRIBUTE = "_cti_signed_url_ok"
H = TypeVar("H")


def allow_signed_urls(handler: H) -> H:
    """Mark a GET handler that may also be reached through a signed URL (besides a bearer token)."""
    setattr(handler, SIGNED_ATTRIBUTE, True)
    return handler


def accepts_signed_urls(handler: object) -> bool:
    return bool(getattr(handler, SIGNED_ATTRIBUTE, False))


def _signature(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, path: str, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{path}?{urlencode({'expires': expires, 'signature': _signature(key, path, expires)})}"


def verify(key: bytes, path: str, expires: str, signature: str, now: float | None = None) -> bool:
    """False for a malformed, forged, other-path or expired signature; constant-time comparison."""
    if not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_signature(key, path, int(expires)), signature)
