"""Our asyncio FastAGI layer: Asterisk runs ``AGI(agi://host:port/<script>)`` and we drive the call."""

from __future__ import annotations

from cti.agi.errors import (
    AgiCommandError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiScriptNotFound,
    AgiTimeout,
)
from cti.agi.protocol import AgiEnvironment, AgiReply, GetDataResult, RecordResult
from cti.agi.registry import AgiScript, ScriptRegistry, agi_script, scripts
from cti.agi.server import FastAgiServer, SessionEnd
from cti.agi.session import AgiCall, AgiSession

__all__ = [
    "AgiCall",
    "AgiCommandError",
    "AgiEnvironment",
    "AgiError",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiScript",
    "AgiScriptNotFound",
    "AgiSession",
    "AgiTimeout",
    "FastAgiServer",
    "GetDataResult",
    "RecordResult",
    "ScriptRegistry",
    "SessionEnd",
    "agi_script",
    "scripts",
]
