"""Shared state and events: one interface (``StateBackend``), an in-process and a Redis backend.

``make_state_backend`` picks the backend from ``StateSettings``; nothing connects until the first
operation, so call ``await backend.ping()`` at start to fail early on a wrong Redis URL.
"""

from __future__ import annotations

from cti.settings import StateSettings
from cti.state.base import StateBackend, Subscription
from cti.state.errors import StateError, StateTypeError, StateUnavailable
from cti.state.memory import InMemoryStateBackend
from cti.state.redis import RedisStateBackend

__all__ = [
    "InMemoryStateBackend",
    "RedisStateBackend",
    "StateBackend",
    "StateError",
    "StateTypeError",
    "StateUnavailable",
    "Subscription",
    "make_state_backend",
]


def make_state_backend(settings: StateSettings) -> StateBackend:
    """The backend named by ``settings.backend``: ``memory`` for one node, ``redis`` for several."""
    if settings.backend == "redis":
        return RedisStateBackend(settings.redis_url, settings.key_prefix)
    return InMemoryStateBackend()
