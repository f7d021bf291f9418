"""IVR errors with stable codes (the flow and schedule parsers define their own beside their rules)."""

from __future__ import annotations

from cti.errors import CtiError


class ServiceNotFound(CtiError):
    code = "ivr.service_not_found"


class DocumentInvalid(CtiError):
    """An imported service document whose parts (number, hours, flow) were refused; ``errors`` lists why."""

    code = "ivr.document_invalid"

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
