"""FastAGI wire format: environment, replies, quoting (pure functions, no sockets)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.agi.errors import AgiProtocolError
from cti.agi.protocol import (
    HANGUP,
    MAX_COMMAND_BYTES,
    MAX_USAGE_LINES,
    AgiReply,
    ReplyAssembler,
    decode_line,
    format_command,
    parse_env_line,
    parse_environment,
    parse_environment_block,
    parse_int,
    parse_reply,
    quote_arg,
    split_command,
)

# As Asterisk 22 sends it for `channel originate Local/100@from-pstn application AGI agi://.../incoming?...`
LOCAL_ENV = """\
agi_network: yes
agi_network_script: incoming?lang=fr&queue=support%20desk&empty=
agi_request: agi://127.0.0.1:4573/incoming?lang=fr&queue=support%20desk&empty=
agi_channel: Local/100@from-pstn-00000001;2
agi_language: en
agi_type: Local
agi_uniqueid: 1732350000.17
agi_version: 22.0.0
agi_callerid: 0612345678
agi_calleridname: Alice Martin
agi_callingpres: 0
agi_callingani2: 0
agi_callington: 0
agi_callingtns: 0
agi_dnid: unknown
agi_rdnis: unknown
agi_context: from-pstn
agi_extension: 100
agi_priority: 1
agi_enhanced: 0.0
agi_accountcode: 
agi_threadid: 140211959031488
agi_arg_1: first arg
agi_arg_2: 
agi_arg_10: tenth
agi_arg_3: third

agi_ignored: after the blank line
"""  # noqa: W291 (the trailing space after "agi_accountcode:" is what Asterisk sends)


# --- environment -------------------------------------------------------------------------------


def test_environment_of_a_local_channel() -> None:
    env = parse_environment(LOCAL_ENV.splitlines())
    assert env.channel == "Local/100@from-pstn-00000001;2"
    assert env.uniqueid == "1732350000.17"
    assert (env.callerid, env.calleridname) == ("0612345678", "Alice Martin")
    assert (env.extension, env.context, env.language) == ("100", "from-pstn", "en")
    assert env.type == "Local"
    assert env.dnid == "unknown"
    assert env.request == "agi://127.0.0.1:4573/incoming?lang=fr&queue=support%20desk&empty="
    assert env.network_script == "incoming?lang=fr&queue=support%20desk&empty="
    assert env.script == "incoming"
    assert dict(env.query) == {"lang": "fr", "queue": "support desk", "empty": ""}
    assert env.raw["agi_accountcode"] == ""
    assert env.raw["agi_version"] == "22.0.0"
    assert "agi_ignored" not in env.raw


def test_arguments_are_ordered_by_number_and_keep_empty_ones() -> None:
    env = parse_environment(LOCAL_ENV.splitlines())
    assert env.arguments == ("first arg", "", "third", "tenth")


def test_environment_is_frozen() -> None:
    env = parse_environment(LOCAL_ENV.splitlines())
    with pytest.raises(AttributeError):
        env.channel = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        env.raw["agi_channel"] = "other"  # type: ignore[index]


@pytest.mark.parametrize(
    ("lines", "script", "query"),
    [
        (["agi_network_script: ivr/main"], "ivr/main", {}),
        (["agi_network_script: /ivr/main/?a=1&a=2"], "ivr/main", {"a": "2"}),
        (["agi_request: agi://10.0.0.1:4573/queue%20in?q=1"], "queue in", {"q": "1"}),
        (["agi_request: agi://10.0.0.1"], "", {}),
        (["agi_request: /usr/share/asterisk/agi-bin/x.agi"], "", {}),
    ],
)
def test_script_name_and_query(lines: list[str], script: str, query: dict[str, str]) -> None:
    env = parse_environment(lines)
    assert (env.script, dict(env.query)) == (script, query)


@pytest.mark.parametrize(
    ("line", "pair"),
    [
        ("agi_channel: PJSIP/100-00000001", ("agi_channel", "PJSIP/100-00000001")),
        ("agi_accountcode: ", ("agi_accountcode", "")),
        ("agi_accountcode:", ("agi_accountcode", "")),
        ("agi_calleridname: Dupont: Jean", ("agi_calleridname", "Dupont: Jean")),
        ("agi_callerid:  leading", ("agi_callerid", " leading")),
    ],
)
def test_env_line(line: str, pair: tuple[str, str]) -> None:
    assert parse_env_line(line) == pair


@pytest.mark.parametrize(
    "line",
    [
        "GET / HTTP/1.1",
        "agi_channel PJSIP/1",
        ": value",
        "agi_: x",
        "channel: x",
        " agi_channel: x",
        "\x00\x01",
    ],
)
def test_malformed_env_line(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_env_line(line)


def test_empty_environment_is_refused() -> None:
    with pytest.raises(AgiProtocolError):
        parse_environment([""])


# --- replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "extra"),
    [
        ("200 result=2", 200, "2", None, {}),
        ("200 result= (timeout)", 200, "", "timeout", {}),
        ("200 result=1234 (timeout)", 200, "1234", "timeout", {}),
        ("200 result=0 endpos=424", 200, "0", None, {"endpos": "424"}),
        ("200 result=-1 (hangup) endpos=67707", 200, "-1", "hangup", {"endpos": "67707"}),
        ("200 result=35 (dtmf) endpos=16000", 200, "35", "dtmf", {"endpos": "16000"}),
        ("200 result=1 (speech) endpos=0 results=1 a", 200, "1", "speech", {"endpos": "0", "results": "1"}),
        ("200 result=1 (Dupont (Jean) Paris)", 200, "1", "Dupont (Jean) Paris", {}),
        ("200 result=1 (a) x=1)", 200, "1", "a) x=1", {}),
        ("200 result=1 ()", 200, "1", "", {}),
        ("200 result=-1 Gosub failed", 200, "-1", None, {}),
        ("510 Invalid or unknown command", 510, "", None, {}),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, "", None, {}),
        ("503 result=-2 Memory allocation failure", 503, "-2", None, {}),
        ("520 Invalid command syntax.  Proper usage not available.", 520, "", None, {}),
    ],
)
def test_reply(line: str, code: int, result: str, data: str | None, extra: dict[str, str]) -> None:
    reply = parse_reply(line)
    assert (reply.code, reply.result, reply.data, dict(reply.extra)) == (code, result, data, extra)
    assert reply.text == line


@pytest.mark.parametrize(
    "line",
    [
        "",
        "HANGUP",
        "foo",
        "20 result=1",
        "2000 result=1",
        "200result=1",
        "200 foo=1",
        "200",
        "200 result=1 (unterminated",
        "٢٠٠ result=1",
        "520-Invalid command syntax.  Proper usage follows:",
    ],
)
def test_malformed_reply(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply(line)


@pytest.mark.parametrize("value", ["", "-", "abc", "1.5", "+3", "٣", "9" * 19, "1 2"])
def test_parse_int_refuses_non_integers(value: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_int(value)


def test_result_int() -> None:
    assert parse_reply("200 result=-1").result_int == -1
    with pytest.raises(AgiProtocolError):
        _ = parse_reply("200 result=").result_int


def _feed_all(lines: list[str]) -> list[object]:
    assembler = ReplyAssembler()
    return [assembler.feed(line) for line in lines]


def test_intermediate_100_is_skipped() -> None:
    fed = _feed_all(["100 result=0 Trying...", "200 result=0 Gosub complete"])
    assert fed[0] is None
    assert isinstance(fed[1], AgiReply)
    assert (fed[1].code, fed[1].result) == (200, "0")


def test_usage_block_is_one_reply_and_the_next_reply_parses() -> None:
    fed = _feed_all(
        [
            "520-Invalid command syntax.  Proper usage follows:",
            " Usage: DATABASE DEL <family> <key>",
            "",
            "520 End of proper usage.",
            "200 result=1",
        ]
    )
    assert fed[:3] == [None, None, None]
    usage = fed[3]
    assert isinstance(usage, AgiReply)
    assert usage.code == 520
    assert "Usage: DATABASE DEL" in usage.text and usage.text.endswith("520 End of proper usage.")
    assert isinstance(fed[4], AgiReply) and fed[4].result == "1"


def test_usage_block_whose_end_is_glued_to_the_last_line() -> None:
    # Asterisk prints the usage text without a final newline before "520 End of proper usage."
    fed = _feed_all(
        [
            "520-Invalid command syntax.  Proper usage follows:",
            "Returns the digits received from the channel at the other end.520 End of proper usage.",
            "200 result=1 (x)",
        ]
    )
    assert isinstance(fed[1], AgiReply) and fed[1].code == 520
    assert isinstance(fed[2], AgiReply) and fed[2].data == "x"


def test_hangup_line_then_dead_channel_reply() -> None:
    fed = _feed_all(["HANGUP", "511 Command Not Permitted on a dead channel or intercept routine"])
    assert fed[0] is HANGUP
    assert isinstance(fed[1], AgiReply) and fed[1].code == 511


def test_endless_usage_block_is_refused() -> None:
    assembler = ReplyAssembler()
    assembler.feed("520-Invalid command syntax.  Proper usage follows:")
    with pytest.raises(AgiProtocolError):
        for _ in range(MAX_USAGE_LINES + 1):
            assembler.feed("usage text")


def test_decode_line() -> None:
    assert decode_line(b"200 result=1\r\n") == "200 result=1"
    assert decode_line(b"200 result=1\n") == "200 result=1"
    assert decode_line(b"200 result=1 (Ren\xe9)\n") == "200 result=1 (Ren\ufffd)"


# --- commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [
        ("welcome", "welcome"),
        ("", '""'),
        ("hello world", '"hello world"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\media", '"C:\\\\media"'),
        ("a\tb", '"a\tb"'),
        ("${CALLERID(num)}", "${CALLERID(num)}"),
        ("#", "#"),
    ],
)
def test_quote_arg(arg: str, quoted: str) -> None:
    assert quote_arg(arg) == quoted


def test_format_command() -> None:
    assert format_command("ANSWER") == b"ANSWER\n"
    assert format_command("STREAM FILE", "welcome", "") == b'STREAM FILE welcome ""\n'
    assert format_command("GET DATA", "enter digits", 5000, 4) == b'GET DATA "enter digits" 5000 4\n'
    assert format_command("EXEC", "Dial", "PJSIP/100,30,tT") == b"EXEC Dial PJSIP/100,30,tT\n"
    assert format_command("SET VARIABLE", "NAME", "Zoë") == "SET VARIABLE NAME Zoë\n".encode()


@pytest.mark.parametrize("bad", ["\n", "\r", "\x00"])
def test_line_breaks_and_nul_are_refused(bad: str) -> None:
    # "x\nHANGUP" would otherwise reach Asterisk as two commands.
    with pytest.raises(AgiProtocolError):
        format_command("SET VARIABLE", "NAME", f"x{bad}HANGUP")


@pytest.mark.parametrize("verb", ["", "GET\nVARIABLE", "ANSWER; HANGUP", "STREAM  FILE", " ANSWER", 'EXEC "x"'])
def test_bad_command_names_are_refused(verb: str) -> None:
    with pytest.raises(AgiProtocolError):
        format_command(verb)


def test_commands_longer_than_asterisks_buffer_are_refused() -> None:
    overhead = len(b"VERBOSE \n")
    assert len(format_command("VERBOSE", "x" * (MAX_COMMAND_BYTES - overhead))) == MAX_COMMAND_BYTES
    with pytest.raises(AgiProtocolError):
        format_command("VERBOSE", "x" * (MAX_COMMAND_BYTES - overhead + 1))


def test_too_many_words_are_refused() -> None:
    with pytest.raises(AgiProtocolError):
        format_command("EXEC", *(["a"] * 127))


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('STREAM FILE "hello world" ""', ["STREAM", "FILE", "hello world", ""]),
        ("SAY  DIGITS\t12 ", ["SAY", "DIGITS", "12"]),
        ("a\\ b c", ["a b", "c"]),
        ('x"y z"w', ["xy zw"]),
        ('"a\\"b" \\\\', ['a"b', "\\"]),
    ],
)
def test_split_command_like_asterisk(line: str, words: list[str]) -> None:
    assert split_command(line) == words


# --- properties --------------------------------------------------------------------------------

_ARG_CHARS = st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",))


@given(st.text())
def test_parse_reply_only_raises_protocol_errors(line: str) -> None:
    try:
        reply = parse_reply(line)
    except AgiProtocolError:
        return
    assert 0 <= reply.code <= 999 and reply.text == line


@given(st.binary())
def test_decoding_any_bytes_gives_one_line(raw: bytes) -> None:
    line = decode_line(raw + b"\n")
    assert isinstance(line, str)
    with contextlib.suppress(AgiProtocolError):
        parse_reply(line)


@given(st.lists(st.text(max_size=120), max_size=40))
def test_assembler_only_raises_protocol_errors(lines: list[str]) -> None:
    assembler = ReplyAssembler()
    try:
        for line in lines:
            item = assembler.feed(line)
            assert item is None or item is HANGUP or isinstance(item, AgiReply)
    except AgiProtocolError:
        pass


@given(st.lists(st.text(max_size=120), max_size=40))
def test_environment_parser_only_raises_protocol_errors(lines: list[str]) -> None:
    try:
        env = parse_environment(lines)
    except AgiProtocolError:
        return
    assert env.raw and all(key.startswith("agi_") for key in env.raw)


@given(st.lists(st.text(_ARG_CHARS, max_size=20), max_size=8))
def test_quoting_round_trips_through_asterisks_parser(args: list[str]) -> None:
    line = format_command("SET VARIABLE", *args)
    assert split_command(line.decode()[:-1]) == ["SET", "VARIABLE", *args]


@given(st.lists(st.text(max_size=30), max_size=6))
def test_a_command_is_always_exactly_one_line(args: list[str]) -> None:
    try:
        line = format_command("VERBOSE", *args)
    except AgiProtocolError:
        assert any(bad in arg for arg in args for bad in "\r\n\x00")
        return
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\r" not in line


@given(st.text(max_size=20), st.sampled_from(["\n", "\r", "\x00"]), st.text(max_size=20))
def test_newline_anywhere_is_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(AgiProtocolError):
        quote_arg(before + bad + after)


_ONE_LINE = st.text(max_size=30).filter(lambda text: "\n" not in text)
_ENV_LINE = st.one_of(
    st.builds("agi_{}: {}".format, st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True), _ONE_LINE),
    _ONE_LINE.filter(bool),
)


@given(st.lists(_ENV_LINE, min_size=1, max_size=30))
def test_block_parser_agrees_with_the_line_parser(lines: list[str]) -> None:
    try:
        expected = parse_environment(lines)
    except AgiProtocolError:
        expected = None
    try:
        got = parse_environment_block("\n".join(lines))
    except AgiProtocolError:
        got = None
    assert got == expected
