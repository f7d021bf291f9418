"""A retrying background task logs an outage once, and its end once, whatever the number of rounds."""

from __future__ import annotations

import logging

import pytest

from cti.db import DatabaseUnavailable
from cti.outage_log import OutageLog
from cti.state import StateUnavailable

LOGGER = "tests.outage"


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, bool]]:
    return [(record.levelno, record.getMessage(), record.exc_info is not None)
            for record in caplog.records if record.name == LOGGER and record.levelno >= logging.INFO]


@pytest.mark.parametrize("error", [DatabaseUnavailable("connection refused"), StateUnavailable("redis down")])
def test_an_outage_is_one_warning_without_traceback_and_its_end_one_more(
    caplog: pytest.LogCaptureFixture, error: Exception,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    outage = OutageLog(logging.getLogger(LOGGER), "feed")
    for _ in range(50):
        outage.failed(error)
    assert outage.down
    outage.ok()
    outage.ok()
    assert not outage.down
    assert _records(caplog) == [(logging.WARNING, f"feed: {error} (out of reach; retrying quietly until it is back)",
                                 False), (logging.WARNING, "feed: working again", False)]


def test_an_unexpected_error_keeps_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(logging.getLogger(LOGGER), "feed")
    for _ in range(3):
        try:
            raise KeyError("bug")
        except KeyError as exc:
            outage.failed(exc)
    assert _records(caplog) == [(logging.ERROR, "feed (retrying quietly until it works)", True)]


def test_rounds_that_work_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(logging.getLogger(LOGGER), "feed")
    outage.ok()
    assert _records(caplog) == []
