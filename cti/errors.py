"""Base exception: every error the server raises on purpose carries a stable id (``code``)."""

from __future__ import annotations


class CtiError(Exception):
    """Root of the project's exceptions; ``code`` is stable and safe to show in logs and APIs."""

    code = "cti.error"


class InvalidInput(CtiError):
    """Input refused for several reasons at once (a flow, a schedule, a document): ``errors`` lists each,
    naming what to fix, so an admin fixes them all in one go rather than one per save."""

    code = "cti.invalid_input"

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
