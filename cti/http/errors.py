"""One way for every route to answer the exceptions it expects: ``{"error", "message"[, "errors"]}`` JSON.

A package lists which of its exceptions mean which status; anything not listed stays a 500 (a bug). An
``InvalidInput`` also carries its ``errors``, every reason at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cti.errors import InvalidInput
from cti.http.auth import Handler

ErrorKinds = type[Exception] | tuple[type[Exception], ...]
Answer = tuple[ErrorKinds, int] | tuple[ErrorKinds, int, str]
"""(exception classes, HTTP status[, the ``error`` code to answer instead of the exception's own])."""


def error_json(exc: Exception, status: int, code: str | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"error": code or getattr(exc, "code", "error"), "message": str(exc)}
    if isinstance(exc, InvalidInput):
        body["errors"] = exc.errors
    return web.json_response({**body, **extra}, status=status)


def answers(*table: Answer) -> Callable[[Handler], Handler]:
    """A handler decorator answering the exceptions of ``table`` (first match wins)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except Exception as exc:
                for kinds, status, *code in table:
                    if isinstance(exc, kinds):
                        return error_json(exc, status, *code)
                raise

        return wrapper

    return decorate

