"""Reading request bodies the same way on every route: a JSON object with known fields, a document, or the
parts of a multipart form."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from cti.errors import CtiError
from cti.safe_text import unstorable_text


class BodyInvalid(CtiError):
    """Answered 400 by every route."""

    code = "http.body_invalid"


async def json_object(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object whose keys are among ``allowed`` and whose texts can all be stored (``cti.safe_text``)."""
    try:
        data = await request.json()
    except (ValueError, LookupError):  # bad JSON, bad UTF-8, unknown charset
        raise BodyInvalid("the body must be a JSON object (UTF-8)") from None
    except RecursionError:  # [[[[...: the parser's own recursion
        raise BodyInvalid("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BodyInvalid(f"the body must be a JSON object, got {type(data).__name__}")
    problem = unstorable_text(data)
    if problem:
        raise BodyInvalid(f"the body contains {problem}")
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


async def form_parts(request: web.Request) -> AsyncGenerator[BodyPartReader, None]:
    """The parts of a multipart body, in order. A malformed body (a part header over 8 KiB, a bad boundary, a
    nested multipart) is BodyInvalid (400) rather than aiohttp's parsing error escaping as a 500."""
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BodyInvalid("nested multipart bodies are not accepted")
            yield part
    except (HttpProcessingError, ValueError) as exc:
        raise BodyInvalid(f"malformed multipart body ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    return str(reason).splitlines()[0][:120] if reason else type(exc).__name__
