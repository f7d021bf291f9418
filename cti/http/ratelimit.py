"""Failed logins counted per username and per client address, in the shared state so every node counts the same.

Fixed windows of ``window_s``: the counter of window ``n = now // window_s`` lives under
``login-fail:<kind>:<subject>:<n>``, created with an expiry past the window's end (``set_if_absent``) then
incremented (``incr`` keeps the expiry), so no counter ever outlives its window by more than one more window.
A burst straddling two windows may get up to twice the limit through; that is the price of two round trips
per counter instead of a script.

An attempt is counted *before* the password is checked: concurrent guesses cannot all slip under the limit
while the (slow, scrypt) checks run. A success then gives the slots back: the username's counter restarts and
the address's loses this attempt, so only failures add up and a desk of agents behind one NAT can log in.
Unknown and known usernames are counted alike, so a refusal never tells whether an account exists.

Usernames are compared lowercase and stored hashed (no user input in key names); IPv6 clients are counted
per /64, the block one subscriber usually owns.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from cti.errors import CtiError
from cti.settings import SecuritySettings
from cti.state import StateBackend, StateError

log = logging.getLogger(__name__)

KEY_PREFIX = "login-fail:"
UNKNOWN_ADDRESS = "unknown"
IPV6_BLOCK = 64

Clock = Callable[[], float]


class LoginThrottled(CtiError):
    """Too many failed logins for this username or from this address: answered 429 with ``Retry-After``."""

    code = "auth.rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Attempt:
    """The counters one login attempt was counted in (none when the state was unreachable)."""

    user_key: str | None
    address_key: str | None
    window: int


@dataclass(frozen=True)
class Limits:
    """``[security] login_*``: failures allowed per username and per address in one window of ``window_s``."""

    window_s: int
    per_user: int
    per_address: int

    @classmethod
    def of(cls, security: SecuritySettings) -> Limits:
        return cls(security.login_window_s, security.login_failures_per_user, security.login_failures_per_address)


class LoginLimiter:
    """Fails open: with the shared state unreachable an attempt is let through, uncounted, and logged.

    The limiter only slows password guessing down; the passwords themselves (10 characters at least, scrypt)
    are the protection. Refusing every login while Redis is unreachable would turn an outage of an auxiliary
    store into a lockout of the whole desk, which is worse than a few unthrottled guesses during it. (A login
    still needs the state to create its session: the session store answers 503 on its own when it is down.)
    """

    def __init__(self, state: StateBackend, limits: Limits, clock: Clock = time.time) -> None:
        self.state = state
        self.limits = limits
        self._clock = clock

    async def begin(self, username: str, address: str | None) -> Attempt:
        """Counts the attempt; raises ``LoginThrottled`` when the username or the address is over its limit."""
        now = self._clock()
        window = int(now // self.limits.window_s)
        user_key = f"{KEY_PREFIX}user:{username_digest(username)}:{window}"
        address_key = f"{KEY_PREFIX}address:{address_bucket(address)}:{window}"
        try:
            per_user = await self._bump(user_key, 1, window, now)
            per_address = await self._bump(address_key, 1, window, now)
        except StateError as exc:
            log.warning("login limits not applied (%s): the shared state is unavailable", exc.code)
            return Attempt(None, None, window)
        if per_user > self.limits.per_user or per_address > self.limits.per_address:
            log.warning("login throttled for %r from %s (attempt %d for the user, %d from the address)",
                        username[:64], address_bucket(address), per_user, per_address)
            raise LoginThrottled(max(1, math.ceil(self._window_end(window) - now)))
        return Attempt(user_key, address_key, window)

    async def succeeded(self, attempt: Attempt) -> None:
        """Not a failure after all: the username starts afresh and the address gets its slot back."""
        if attempt.user_key is None or attempt.address_key is None:
            return
        now = self._clock()
        try:
            await self.state.delete(attempt.user_key)
            if self._window_end(attempt.window) + self.limits.window_s > now:  # else the counter is gone anyway
                await self._bump(attempt.address_key, -1, attempt.window, now)
        except StateError as exc:
            log.warning("login limits: a success could not be recorded (%s)", exc.code)

    async def _bump(self, key: str, amount: int, window: int, now: float) -> int:
        """The counter exists with an expiry one window past its own before it changes: a late change can
        never recreate it without one."""
        ttl = self._window_end(window) + self.limits.window_s - now
        await self.state.set_if_absent(key, "0", ttl=ttl)
        return await self.state.incr(key, amount)

    def _window_end(self, window: int) -> float:
        return float((window + 1) * self.limits.window_s)


def username_digest(username: str) -> str:
    """Usernames are compared lowercase (``Alice`` is ``alice``); the key holds a hash, never user input."""
    return hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]


def address_bucket(remote: str | None) -> str:
    """The client address as counted: IPv4 as is, IPv6 per /64 (an IPv4-mapped one as its IPv4)."""
    try:
        address = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_BLOCK}", strict=False))
    return str(address)


LIMITER_KEY: web.AppKey[LoginLimiter] = web.AppKey("cti_login_limiter", LoginLimiter)
