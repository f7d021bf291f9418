"""IVR errors with stable codes (the flow and schedule parsers define their own beside their rules)."""

from __future__ import annotations

from cti.errors import CtiError, InvalidInput


class ServiceNotFound(CtiError):
    code = "ivr.service_not_found"


class DocumentInvalid(InvalidInput):
    """An imported service document whose parts (number, hours, flow) were refused; ``errors`` lists why."""

    code = "ivr.document_invalid"
