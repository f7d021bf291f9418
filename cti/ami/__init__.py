"""AMI adapter: panoramisk's wire protocol, our own supervisor (liveness, backoff, no replays)."""

from __future__ import annotations

from cti.ami.backoff import Backoff
from cti.ami.client import AmiClient, AmiStats
from cti.ami.errors import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiBadAction,
    AmiDisconnected,
    AmiError,
    AmiLoginFailed,
    AmiNotConnected,
    AmiUnknownAction,
)
from cti.ami.protocol import AmiAction, AmiProtocol

__all__ = [
    "AmiAction",
    "AmiActionFailed",
    "AmiActionTimeout",
    "AmiBadAction",
    "AmiClient",
    "AmiDisconnected",
    "AmiError",
    "AmiLoginFailed",
    "AmiNotConnected",
    "AmiProtocol",
    "AmiStats",
    "AmiUnknownAction",
    "Backoff",
]
