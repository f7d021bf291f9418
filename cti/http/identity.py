"""Who made a request: the role every route checks, and for people the user and the agent they are.

API tokens (``[security] api_tokens``) carry a role only; a login session (cookie in a browser, or the same
session token as a Bearer header for other clients) also names the user and, for agents, the ACD agent id the
agent desktop and its websocket act as.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Via = Literal["api-token", "session-cookie", "session-token", "signed-url"]


@dataclass(frozen=True)
class Identity:
    role: str
    via: Via
    user_id: int | None = None
    username: str | None = None
    agent_id: str | None = None  # the ACD agent this user is (agents; supervisors may have one too)
    language: str | None = None  # the user's preferred UI language, when set
    csrf: str | None = None  # the session's anti-CSRF token (cookie sessions send it back in X-CSRF-Token)

    @property
    def author(self) -> str:
        """The name written in audit trails and ticket histories."""
        return self.username or f"{self.role} (api token)"


IDENTITY = web.RequestKey("cti_identity", Identity)


def identity_of(request: web.Request) -> Identity:
    """The authenticated identity; the auth middleware sets it before any handler runs."""
    return request[IDENTITY]
