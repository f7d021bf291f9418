"""Voicemail errors, each with a stable ``code``."""

from __future__ import annotations

from cti.errors import CtiError


class VoicemailError(CtiError):
    code = "voicemail.error"


class InvalidRecordingPath(VoicemailError):
    """A recording path that is absolute, climbs out of the media folder or is not under ``recordings/``."""

    code = "voicemail.bad_path"
