"""Helpers for the bad-input tests (``tests/unit/test_fuzz_*.py``): Hypothesis settings that give the same
examples on every run, strategies for hostile input, and a recorder of what reaches the event loop's
exception handler (an exception nobody caught: a protocol callback that raised, a task that died), also as the
fixture ``loop_errors`` (this module is a plugin of the root conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

LoopErrors = list[dict[str, Any]]


def fuzz_settings(max_examples: int, *, shrink: bool = True) -> settings:
    """Derandomized (a fixed seed per test) and without the example database, so CI sees the same examples on
    every run; no deadline (a socket round trip is not a slow example). ``shrink=False`` for tests whose failures
    are waits running into their hang guard: shrinking would repeat those waits hundreds of times."""
    phases = tuple(Phase) if shrink else (Phase.explicit, Phase.generate)
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=phases,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the server fixture is meant to serve every example
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


@contextlib.contextmanager
def recording_loop_errors() -> Iterator[LoopErrors]:
    """Every context the running loop's exception handler gets while inside; collected garbage first on the way
    out, so a task that died unseen ("Task exception was never retrieved") is reported too."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    seen: LoopErrors = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
        gc.collect()  # once per test: it takes a tenth of a second with the test suite loaded
    finally:
        loop.set_exception_handler(previous)


def described(errors: LoopErrors) -> list[str]:
    """What the loop was told, readable in an assertion message."""
    return [f"{context.get('message')}: {context.get('exception')!r}" for context in errors]


# --- hostile text and JSON ------------------------------------------------------------------------------------

SPECIAL_CHARS = st.sampled_from(["\x00", "\n", "\r", "\t", "\u2028", "\ufeff", "\ufffd", "é", "\U0001f600"])
LONE_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
"""Not encodable as UTF-8, yet ``json.loads('"\\ud800"')`` gives one: any JSON text may carry them."""


def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Short texts mixing ordinary characters with NUL, line breaks, lone surrogates, emoji..., and long ones."""
    chars = st.one_of(st.characters(), SPECIAL_CHARS, LONE_SURROGATES)
    long_text = st.tuples(st.sampled_from(["a", "9", "é", " ", "\x00"]), st.integers(200, 20_000)).map(
        lambda pair: pair[0] * pair[1]
    )
    return st.one_of(st.text(chars, max_size=max_size), long_text)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any value ``json.loads`` can return, including NaN, huge integers and lone surrogates in strings."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(),
        hostile_text(),
    )
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text(12), children, max_size=4),
        max_leaves=max_leaves,
    )


def dumps(value: Any) -> str:
    """As a client would send it (``ensure_ascii``: lone surrogates travel as ``\\udxxx`` escapes)."""
    return json.dumps(value)


def nested_json(depth: int, kind: str = "list") -> str:
    """``[[[...]]]`` or ``{"a":{"a":...}}`` nested ``depth`` times: valid JSON that recursion-based parsers
    cannot read."""
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "null" + "}" * depth


@pytest.fixture
async def loop_errors() -> AsyncIterator[LoopErrors]:
    """What reached the loop's exception handler during the whole test (all its examples); none may."""
    with recording_loop_errors() as seen:
        yield seen
    assert seen == [], described(seen)
