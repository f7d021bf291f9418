"""Login sessions in the shared state, so every server node knows every session.

The client holds a random token (a cookie in a browser, a Bearer header elsewhere); the state holds only its
SHA-256 under ``session:<hex>``, so a dump of Redis gives no usable token. A session lives ``ttl_s`` from the
login whatever the activity (absolute expiry): the state's own expiry removes it, and ``expires_at`` is checked
again on reading. ``session-user:<user id>`` indexes a user's sessions so they can all be ended at once (the
account is deactivated, deleted, demoted or its password changed).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cti.http.identity import Identity, Via
from cti.state import StateBackend
from cti.users.store import User

KEY_PREFIX = "session:"
USER_INDEX_PREFIX = "session-user:"
TOKEN_BYTES = 32
CSRF_BYTES = 24
MAX_TOKEN_LENGTH = 256

Clock = Callable[[], float]


@dataclass(frozen=True)
class Session:
    """What the state stores for one session (``expires_at``: ISO 8601, UTC)."""

    user_id: int
    username: str
    role: str
    agent_id: str | None
    language: str | None
    csrf: str
    expires_at: str

    def identity(self, via: Via) -> Identity:
        return Identity(role=self.role, via=via, user_id=self.user_id, username=self.username,
                        agent_id=self.agent_id, language=self.language, csrf=self.csrf)

    def expired(self, now: float) -> bool:
        return datetime.fromisoformat(self.expires_at).timestamp() <= now


def token_key(token: str) -> str:
    return KEY_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    def __init__(self, state: StateBackend, ttl_s: float, clock: Clock = time.time) -> None:
        self.state = state
        self.ttl_s = ttl_s
        self._clock = clock

    async def create(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``; the token is returned once and never stored."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires = datetime.fromtimestamp(self._clock() + self.ttl_s, UTC).isoformat()
        session = Session(user.id, user.username, user.role, user.agent_id, user.language,
                          secrets.token_urlsafe(CSRF_BYTES), expires)
        key = token_key(token)
        await self.state.set(key, json.dumps(asdict(session), separators=(",", ":")), ttl=self.ttl_s)
        await self._index(user.id, key, session.expires_at)
        return token, session

    async def session(self, token: str) -> Session | None:
        """None for an unknown, expired or malformed one (a corrupt entry is not a server error)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        raw = await self.state.get(token_key(token))
        session = _parse(raw) if raw is not None else None
        if session is None or session.expired(self._clock()):
            return None
        return session

    async def get(self, token: str) -> Identity | None:
        session = await self.session(token)
        return session.identity("session-token") if session is not None else None

    async def delete(self, token: str) -> bool:
        return await self.state.delete(token_key(token)) if token else False

    async def delete_for_user(self, user_id: int) -> int:
        """Ends every session of ``user_id`` on every node; returns how many were still there."""
        index = USER_INDEX_PREFIX + str(user_id)
        ended = 0
        for key in await self.state.hgetall(index):
            ended += await self.state.delete(key)
        await self.state.delete(index)
        return ended

    async def _index(self, user_id: int, key: str, expires_at: str) -> None:
        """Adds the session to its user's index and drops the index's expired entries (it has no expiry)."""
        index = USER_INDEX_PREFIX + str(user_id)
        now = self._clock()
        stale = [k for k, until in (await self.state.hgetall(index)).items() if _timestamp(until) <= now]
        if stale:
            await self.state.hdel(index, *stale)
        await self.state.hset(index, {key: expires_at})


def _parse(raw: str) -> Session | None:
    try:
        data: Any = json.loads(raw)
        session = Session(**data)
        datetime.fromisoformat(session.expires_at)
    except (ValueError, TypeError):
        return None
    return session


def _timestamp(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0
