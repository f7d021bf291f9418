"""Text no database can store: NUL characters and unpaired surrogates, found anywhere in a parsed document.

PostgreSQL refuses NUL in text columns, and an unpaired surrogate (what a JSON ``"\\ud800"`` escape decodes
to) cannot be encoded as UTF-8 at all, by any driver. Left in, either one fails deep inside a handler as a 500
on the way to the database, an e-mail or Asterisk; refused where a body is read, it is a clear 400 instead.
"""

from __future__ import annotations

from typing import Any

MAX_ITEMS = 1_000_000  # a parsed body is bounded by its size in bytes; this only stops a runaway walk


def unstorable_text(data: Any) -> str | None:
    """What is wrong with the first bad string of ``data`` (keys included), or None when all can be stored.

    The walk is iterative: a deeply nested document cannot exhaust the interpreter's recursion limit here.
    """
    pending: list[Any] = [data]
    seen = 0
    while pending and seen < MAX_ITEMS:
        item = pending.pop()
        seen += 1
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "an unpaired surrogate (\\ud800-\\udfff), which is no character"
    return None
