"""Errors of the shared-state backends; callers catch ``StateUnavailable`` to fall back or retry."""

from __future__ import annotations

from cti.errors import CtiError


class StateError(CtiError):
    """Root of the state errors, so a caller can guard a whole state operation with one ``except``."""

    code = "state.error"


class StateUnavailable(StateError):
    """The store cannot be reached right now; the backend reconnects by itself, so retrying later is fine."""

    code = "state.unavailable"


class StateTypeError(StateError):
    """The key holds another kind of value (a hash where a string was expected, or a non-integer for incr).

    Both backends raise it so code written against the in-process store behaves the same on Redis.
    """

    code = "state.wrong_type"
