"""FastAGI errors: each has a stable ``code`` so logs and metrics can group them."""

from __future__ import annotations

from cti.errors import CtiError


class AgiError(CtiError):
    """Root of the AGI layer's errors."""

    code = "agi.error"


class AgiHangup(AgiError):
    """The caller hung up (or the channel left AGI): the script should stop, nothing is wrong.

    The server treats it as a clean end of the call flow.
    """

    code = "agi.hangup"


class AgiCommandError(AgiError):
    """Asterisk refused or failed a command (510, 520, 503, or a failed ``200 result=-1`` on a live channel).

    ``status`` is Asterisk's numeric reply code and ``text`` its reply (usage lines included), kept
    verbatim because they are what an operator needs to fix the script.
    """

    code = "agi.command"

    def __init__(self, status: int, text: str, command: str) -> None:
        super().__init__(f"{command!r} -> {text}")
        self.status = status
        self.text = text
        self.command = command


class AgiTimeout(AgiError):
    """A command got no complete reply within its time limit; the session is unusable afterwards."""

    code = "agi.timeout"


class AgiProtocolError(AgiError):
    """Input that does not follow the AGI protocol (or a command we refuse to send, e.g. with a newline)."""

    code = "agi.protocol"


class AgiScriptNotFound(AgiError):
    """No script is registered under the name Asterisk asked for (``agi://host/<name>``)."""

    code = "agi.script_not_found"

    def __init__(self, name: str) -> None:
        longer = f" ({len(name)} characters)" if len(name) > 80 else ""  # a peer chooses it: logs stay short
        super().__init__(f"no AGI script registered as {name[:80]!r}{longer}")
        self.name = name
