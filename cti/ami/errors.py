"""AMI adapter errors: each failure mode a caller must tell apart has its own class and stable code."""

from __future__ import annotations

from typing import Any

from cti.errors import CtiError


class AmiError(CtiError):
    """Root of the AMI adapter's errors."""

    code = "ami.error"


class AmiNotConnected(AmiError):
    """No logged-in AMI session right now; nothing was sent, so retrying later is safe."""

    code = "ami.not_connected"


class AmiActionTimeout(AmiError):
    """No reply in time; the action may still have run on Asterisk (it is forgotten, not retried)."""

    code = "ami.timeout"


class AmiActionFailed(AmiError):
    """Asterisk answered ``Response: Error``; ``response`` is its reply (``Message`` says why)."""

    code = "ami.failed"

    def __init__(self, response: Any) -> None:
        self.response = response
        action = getattr(response, "actionid", "") or "?"
        super().__init__(f"AMI action {action} failed: {getattr(response, 'message', '') or response!r}")


class AmiDisconnected(AmiError):
    """The link dropped while the action was pending; it is NOT replayed (it may have run already)."""

    code = "ami.disconnected"


class AmiLoginFailed(AmiError):
    """Asterisk refused our Login (wrong username/secret, ACL); the supervisor retries with backoff."""

    code = "ami.login_failed"


class AmiBadAction(AmiError):
    """The action cannot be sent as given (e.g. a CR/LF in a value would inject AMI headers)."""

    code = "ami.bad_action"


class AmiUnknownAction(AmiError):
    """No Originate with this ActionID is being tracked (never sent by us, or already forgotten)."""

    code = "ami.unknown_action"
