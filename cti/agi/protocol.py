"""The FastAGI wire format as pure functions: environment block, reply lines, command quoting.

Nothing here does I/O, so every rule about what Asterisk sends and accepts can be tested on its own
(``tests/unit/test_agi_protocol.py``). Facts this module relies on (res_agi.c, Asterisk 22):

* the environment is ``agi_<key>: <value>`` lines ended by a blank line;
* a reply is ``<code> result=<value>[ (<data>)][ key=value ...]``; ``100`` lines are intermediate;
  ``520-`` opens a usage block closed by ``520 End of proper usage.``; a bare ``HANGUP`` line is sent
  on its own when the channel hangs up;
* Asterisk splits a command like a shell (double quotes, backslash escapes, space/tab separators)
  and reads it into a 2048-byte buffer: a longer line is cut and its tail runs as a second command.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, NamedTuple
from urllib.parse import parse_qsl, unquote

from cti.agi.errors import AgiCommandError, AgiProtocolError

MAX_COMMAND_BYTES: Final = 2047
"""Longest command line (newline included) Asterisk reads as one command (``AGI_BUF_LEN`` - 1)."""
MAX_ARGS: Final = 127
"""Asterisk keeps at most ``MAX_ARGS - 1`` words of a command and silently drops the rest."""
MAX_USAGE_LINES: Final = 500
"""A ``520-`` usage block longer than this is treated as garbage rather than buffered forever."""

_ENV_KEY = re.compile(r"agi_[A-Za-z0-9_]+")
_ENV_LINES = re.compile(r"^(agi_[A-Za-z0-9_]+): ?(.*)$", re.MULTILINE)
_VERB = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_SPECIAL = re.compile(r'[\s"\\\x00]')  # needs quoting, or is forbidden (\s covers \r and \n)
_USAGE_END = "End of proper usage."


class Signal(enum.Enum):
    """Lines that are not replies to a command."""

    HANGUP = "HANGUP"


HANGUP: Final = Signal.HANGUP


@dataclass(frozen=True, slots=True)
class AgiEnvironment:
    """What Asterisk tells us about the call when it connects (values verbatim: absent ones are ``unknown``).

    ``network_script`` is the part of ``agi://host:port/<script>?<query>`` after the host; ``script`` and
    ``query`` are its decoded path and query arguments. ``arguments`` are ``AGI(url,arg1,arg2...)``'s
    extra arguments (``agi_arg_1``...). ``raw`` keeps every line, keyed as sent (``agi_channel``...).
    """

    channel: str = ""
    uniqueid: str = ""
    callerid: str = ""
    calleridname: str = ""
    extension: str = ""
    dnid: str = ""
    context: str = ""
    language: str = ""
    type: str = ""
    request: str = ""
    network_script: str = ""
    script: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    arguments: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=dict)


_NO_EXTRA: Final[Mapping[str, str]] = MappingProxyType({})


class AgiReply(NamedTuple):
    """One complete reply: ``200 result=-1 (hangup) endpos=67707`` -> code 200, result "-1", data "hangup",
    extra {"endpos": "67707"}. ``text`` is the reply as received (all lines of a usage block).

    A NamedTuple rather than a frozen dataclass: one is built per command, on the hot path.
    """

    code: int
    result: str = ""
    data: str | None = None
    extra: Mapping[str, str] = _NO_EXTRA
    text: str = ""

    @property
    def result_int(self) -> int:
        return parse_int(self.result, self.text)


@dataclass(frozen=True, slots=True)
class GetDataResult:
    digits: str
    timed_out: bool


RecordEnd = Literal["dtmf", "timeout", "hangup", "silence"]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """How ``RECORD FILE`` ended; ``endpos`` is the recording's length in samples (the file is kept)."""

    ended_by: RecordEnd
    digit: str | None
    endpos: int


def parse_int(value: str, context: str = "") -> int:
    """``int()`` that only accepts short ASCII numbers and fails with :class:`AgiProtocolError`."""
    digits = value[1:] if value.startswith("-") else value
    if not (0 < len(digits) <= 18 and digits.isascii() and digits.isdigit()):
        raise AgiProtocolError(f"expected an integer, got {value[:40]!r} in {context[:80]!r}")
    return int(value)


def decode_line(raw: bytes) -> str:
    """Strip the line ending and decode; bytes that are not UTF-8 become U+FFFD instead of failing."""
    return raw.rstrip(b"\r\n").decode("utf-8", "replace")


# --- environment -------------------------------------------------------------------------------


def parse_env_line(line: str) -> tuple[str, str]:
    """``agi_channel: PJSIP/100-0001`` -> ``("agi_channel", "PJSIP/100-0001")``."""
    key, sep, value = line.partition(":")
    if not sep or _ENV_KEY.fullmatch(key) is None:
        raise AgiProtocolError(f"not an AGI environment line: {line[:80]!r}")
    return key, value[1:] if value.startswith(" ") else value


def parse_environment_block(text: str) -> AgiEnvironment:
    """Parse the environment lines joined by ``\\n`` (without the closing blank line) in one pass."""
    lines = text.split("\n")
    pairs = _ENV_LINES.findall(text)
    if len(pairs) != len(lines):  # some line is not ``agi_<key>: <value>``: name it
        pairs = [parse_env_line(line) for line in lines]
    return environment_from_pairs(pairs)


def parse_environment(lines: Iterable[str]) -> AgiEnvironment:
    """Parse environment lines up to the first blank one (the blank line itself is optional here)."""
    pairs = []
    for line in lines:
        if not line:
            break
        pairs.append(parse_env_line(line))
    return environment_from_pairs(pairs)


def environment_from_pairs(pairs: Iterable[tuple[str, str]]) -> AgiEnvironment:
    raw = dict(pairs)
    if not raw:
        raise AgiProtocolError("empty AGI environment")
    network_script = raw.get("agi_network_script") or _script_from_request(raw.get("agi_request", ""))
    script, query = parse_network_script(network_script)
    get = raw.get
    return AgiEnvironment(
        channel=get("agi_channel", ""),
        uniqueid=get("agi_uniqueid", ""),
        callerid=get("agi_callerid", ""),
        calleridname=get("agi_calleridname", ""),
        extension=get("agi_extension", ""),
        dnid=get("agi_dnid", ""),
        context=get("agi_context", ""),
        language=get("agi_language", ""),
        type=get("agi_type", ""),
        request=get("agi_request", ""),
        network_script=network_script,
        script=script,
        query=MappingProxyType(query) if query else _NO_EXTRA,
        arguments=_arguments(raw),
        raw=MappingProxyType(raw),
    )


def parse_network_script(value: str) -> tuple[str, dict[str, str]]:
    """``ivr/main?lang=fr&queue=2`` -> ``("ivr/main", {"lang": "fr", "queue": "2"})``."""
    path, _, query = value.partition("?")
    name = unquote(path).strip("/")
    return name, dict(parse_qsl(query, keep_blank_values=True)) if query else {}


def _script_from_request(request: str) -> str:
    """Fallback when ``agi_network_script`` is missing: what follows the host in ``agi://host:port/...``."""
    scheme, sep, rest = request.partition("://")
    if not sep or scheme.lower() not in ("agi", "hagi"):
        return ""
    return rest.partition("/")[2]


def _arguments(raw: Mapping[str, str]) -> tuple[str, ...]:
    numbered = [(key[8:], value) for key, value in raw.items() if key.startswith("agi_arg_")]
    if not numbered:
        return ()
    valid = [
        (int(index), value) for index, value in numbered if index.isascii() and index.isdigit() and len(index) <= 4
    ]
    return tuple(value for _, value in sorted(valid))


# --- replies -----------------------------------------------------------------------------------


def parse_reply(line: str) -> AgiReply:
    """Parse one single-line reply (``HANGUP`` and ``520-`` blocks are :class:`ReplyAssembler`'s job)."""
    code_text = line[:3]
    well_formed = len(code_text) == 3 and code_text.isascii() and code_text.isdigit()
    if not well_formed or line[3:4] not in ("", " "):
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(code_text)
    if not line.startswith("result=", 4):
        if code < 300:
            raise AgiProtocolError(f"reply without result=: {line[:80]!r}")
        return AgiReply(code, "", None, _NO_EXTRA, line)
    return _parse_result(code, line)


def _parse_result(code: int, line: str) -> AgiReply:
    """``<code> result=...``: the part after ``result=`` (at offset 11)."""
    result, _, tail = line[11:].partition(" ")
    if not tail:
        return tuple.__new__(AgiReply, (code, result, None, _NO_EXTRA, line))
    data = None
    if tail.startswith("("):
        # A variable's value may itself contain ")": when the line ends with ")" the data runs to the
        # last one (GET VARIABLE); otherwise key=value pairs follow the first one (RECORD FILE).
        close = tail.rfind(")") if tail.endswith(")") else tail.find(")")
        if close < 0:
            raise AgiProtocolError(f"unterminated (...) in reply: {line[:80]!r}")
        data, tail = tail[1:close], tail[close + 1 :]
    return tuple.__new__(AgiReply, (code, result, data, _extras(tail) if tail else _NO_EXTRA, line))


def variable_value(reply: AgiReply) -> str | None:
    """``GET [FULL] VARIABLE``: ``200 result=1 (value)``, or ``200 result=0`` when not set."""
    if reply.result == "0":
        return None
    if reply.result == "1":
        return reply.data or ""
    raise AgiProtocolError(f"unexpected variable reply {reply.text[:80]!r}")


def dtmf_char(reply: AgiReply) -> str:
    """Digits come back as their character code (``result=50`` is ``"2"``)."""
    value = reply.result_int
    if not 0 < value < 128:
        raise AgiProtocolError(f"not a DTMF character code: {reply.text[:80]!r}")
    return chr(value)


def record_outcome(reply: AgiReply, early: bool) -> RecordResult | None:
    """Read a ``RECORD FILE`` reply; None for ``result=-1`` before or between frames (``randomerror``,
    ``waitfor``), which is a hang-up or a failure only ``CHANNEL STATUS`` can tell apart.

    Asterisk reports silence like the time limit (``(timeout)``): ``early`` says it ended before that.
    A digit pressed during the beep comes back as ``(randomerror)`` with the digit's code.
    """
    endpos = parse_int(reply.extra.get("endpos", "0"), reply.text)
    result = reply.result_int
    if reply.data == "hangup":
        return RecordResult("hangup", None, endpos)
    if reply.data == "dtmf" or (reply.data == "randomerror" and result > 0):
        return RecordResult("dtmf", dtmf_char(reply), endpos)
    if reply.data == "timeout":
        return RecordResult("silence" if early else "timeout", None, endpos)
    if result == -1 and reply.data in ("randomerror", "waitfor"):
        return None
    raise AgiCommandError(reply.code, reply.text, "RECORD FILE")


def _extras(tail: str) -> dict[str, str]:
    """``endpos=123 results=1`` -> dict; words without ``=`` (``Gosub failed``) only stay in ``text``."""
    found = {}
    for word in tail.split():
        key, sep, value = word.partition("=")
        if sep and key:
            found[key] = value
    return found


class ReplyAssembler:
    """Turns reply lines into replies: ``feed`` returns a reply, ``HANGUP``, or ``None`` (need more lines).

    ``100`` lines (``100 result=0 Trying...``) are skipped; a ``520-`` usage block is gathered into one
    reply whose ``text`` holds every line. Asterisk prints the usage without a final newline, so the
    closing ``520 End of proper usage.`` can be glued to the end of the last usage line.
    """

    __slots__ = ("_block", "_block_code")

    def __init__(self) -> None:
        self._block: list[str] | None = None
        self._block_code = ""  # as sent ("520", or "005": the closing line repeats it digit for digit)

    def feed(self, line: str) -> AgiReply | Signal | None:
        if self._block is not None:
            return self._feed_block(line)
        if line.startswith("200 result="):  # the common case, without parse_reply's checks
            if " " not in line[11:]:  # tuple.__new__: NamedTuple's own __new__ is a Python frame
                return tuple.__new__(AgiReply, (200, line[11:], None, _NO_EXTRA, line))
            return _parse_result(200, line)
        if line.strip() == "HANGUP":
            return HANGUP
        if not line.strip():
            return None
        if line[3:4] == "-":
            self._open_block(line)
            return None
        reply = parse_reply(line)
        return None if reply.code < 200 else reply

    def _open_block(self, line: str) -> None:
        code_text = line[:3]
        if not (code_text.isascii() and code_text.isdigit()):
            raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
        self._block, self._block_code = [line], code_text

    def _feed_block(self, line: str) -> AgiReply | None:
        block = self._block
        assert block is not None
        block.append(line)
        if line.startswith(self._block_code + " ") or line.endswith(_USAGE_END):
            self._block = None
            return AgiReply(int(self._block_code), "", None, _NO_EXTRA, "\n".join(block))
        if len(block) > MAX_USAGE_LINES:
            raise AgiProtocolError(f"{self._block_code}- block longer than {MAX_USAGE_LINES} lines")
        return None


# --- commands ----------------------------------------------------------------------------------


def quote_arg(arg: str) -> str:
    """Quote one argument the way Asterisk's parser undoes it; refuse what would split the command."""
    if arg and _SPECIAL.search(arg) is None:
        return arg
    if _FORBIDDEN.search(arg) is not None:
        raise AgiProtocolError(f"AGI argument contains a newline, carriage return or NUL: {arg[:40]!r}")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(verb: str, *args: str | int) -> bytes:
    """``format_command("STREAM FILE", "hello world", "")`` -> ``b'STREAM FILE "hello world" ""\\n'``."""
    _check_verb(verb)
    parts = [verb]
    for arg in args:
        if isinstance(arg, int):
            parts.append(str(arg))
        elif arg and _SPECIAL.search(arg) is None:
            parts.append(arg)
        else:
            parts.append(quote_arg(arg))
    try:
        data = (" ".join(parts) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        raise AgiProtocolError(f"{verb}: argument is not encodable as UTF-8") from None
    if len(data) > MAX_COMMAND_BYTES:
        raise AgiProtocolError(f"{verb}: command is {len(data)} bytes, Asterisk reads {MAX_COMMAND_BYTES}")
    if verb.count(" ") + len(parts) > MAX_ARGS:
        raise AgiProtocolError(f"{verb}: more than {MAX_ARGS} words")
    return data


@functools.lru_cache(maxsize=256)
def _check_verb(verb: str) -> None:
    if _VERB.fullmatch(verb) is None:
        raise AgiProtocolError(f"not an AGI command name: {verb[:40]!r}")


def split_command(line: str) -> list[str]:
    """Split a command line into words exactly as Asterisk's ``parse_args`` does (used by test peers).

    Double quotes group words, a backslash makes the next character literal, spaces and tabs separate.
    """
    words: list[list[str]] = []
    quoted = escaped = False
    between = True
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and between:
                words.append([])
                between = False
        elif char in " \t" and not quoted and not escaped:
            between = True
        elif char == "\\" and not escaped:
            escaped = True
        else:
            if between:
                words.append([])
                between = False
            words[-1].append(char)
            escaped = False
    return ["".join(word) for word in words]
