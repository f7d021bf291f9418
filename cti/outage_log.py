"""Logging a background task's failures once per outage instead of once per round.

A loop that retries every few seconds while the database or Redis is down would otherwise write the same
traceback hundreds of times and bury what matters in the log. The first failure is logged (with its
traceback when it is not a plain outage), the following ones only at debug level, and the recovery once.
"""

from __future__ import annotations

import logging

from cti.db import is_unavailable
from cti.state import StateError


class OutageLog:
    """``failed(exc)`` in the ``except`` of each round, ``ok()`` after a round that worked."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log, self._what, self._down = logger, what, False

    @property
    def down(self) -> bool:
        return self._down

    def failed(self, exc: BaseException) -> None:
        if self._down:
            self._log.debug("%s: still failing: %s", self._what, exc)
            return
        self._down = True
        if is_unavailable(exc) or isinstance(exc, StateError):
            self._log.warning("%s: %s (out of reach; retrying quietly until it is back)", self._what, exc)
        else:
            self._log.error("%s (retrying quietly until it works)", self._what, exc_info=exc)

    def ok(self) -> None:
        if self._down:
            self._down = False
            self._log.warning("%s: working again", self._what)
