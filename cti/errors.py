"""Base exception: every error the server raises on purpose carries a stable id (``code``)."""

from __future__ import annotations


class CtiError(Exception):
    """Root of the project's exceptions; ``code`` is stable and safe to show in logs and APIs."""

    code = "cti.error"
