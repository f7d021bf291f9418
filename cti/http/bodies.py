"""Reading request bodies the same way on every route: a JSON object with known fields, or a document."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cti.errors import CtiError


class BodyInvalid(CtiError):
    """Answered 400 by every route."""

    code = "http.body_invalid"


async def json_object(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, LookupError):  # bad JSON, bad UTF-8, unknown charset
        raise BodyInvalid("the body must be a JSON object (UTF-8)") from None
    if not isinstance(data, dict):
        raise BodyInvalid(f"the body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise BodyInvalid(f"unknown field(s): {', '.join(unknown)} (allowed: {', '.join(allowed)})")
    return data


async def body_text(request: web.Request, limit: int) -> str:
    """The body as UTF-8 text, refused above ``limit`` bytes before it is decoded."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyInvalid(f"the body is larger than {limit // 1024} KiB")
    raw = await request.read()
    if len(raw) > limit:
        raise BodyInvalid(f"the body is larger than {limit // 1024} KiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyInvalid("the body is not UTF-8 text") from None
