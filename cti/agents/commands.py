"""What an agent's desktop may ask over its websocket: ``{"id": "c7", "cmd": "pause", "args": {...}}``.

Every command acts as the agent the session belongs to (never an agent named in the message), is checked
before anything changes, and is answered ``{"type": "reply", "data": {"reply_to": "c7", "ok": true,
"result": {...}}}`` or ``{"ok": false, "error": <stable code>, "message": <reason>}``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from cti.acd.live_http import check_extension, check_pause_reason
from cti.agents.desk import AgentDesk
from cti.errors import CtiError
from cti.http.bodies import BodyInvalid
from cti.safe_text import unstorable_text


class CommandInvalid(CtiError):
    code = "desktop.invalid_command"


Args = dict[str, Any]
Command = Callable[[AgentDesk, str, str, Args], Awaitable[dict[str, Any]]]
"""``(desk, agent id, author, args) -> result``."""

CALL_ID = re.compile(r"^[\w.-]{1,64}$")
MAX_NOTE = 2000
MAX_ID = 2**31 - 1  # the database's integer ids


def text_arg(args: Args, name: str, max_length: int, *, required: bool = False) -> str:
    value = args.get(name, "")
    if not isinstance(value, str) or len(value) > max_length:
        raise CommandInvalid(f"{name} must be a text of at most {max_length} characters")
    problem = unstorable_text(value)  # NUL, or a lone surrogate from a JSON "\ud800": the database refuses them
    if problem:
        raise CommandInvalid(f"{name} contains {problem}")
    if required and not value.strip():
        raise CommandInvalid(f"{name} is required")
    return value.strip()


def call_id_arg(args: Args) -> str:
    value = args.get("call_id")
    if not isinstance(value, str) or not CALL_ID.fullmatch(value):
        raise CommandInvalid("call_id must be the id of a call on your screen")
    return value


def int_arg(args: Args, name: str) -> int:
    value = args.get(name)
    if isinstance(value, str):
        digits = value.strip().lstrip("#")
        if digits.isascii() and digits.isdigit() and len(digits) <= 10:  # not "²" nor 5,000 digits: int() fails
            value = int(digits)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise CommandInvalid(f"{name} must be a positive number")
    return value


def _checked(check: Callable[[object], str], value: object) -> str:
    try:
        return check(value)
    except BodyInvalid as exc:
        raise CommandInvalid(str(exc)) from None


async def login(desk: AgentDesk, agent_id: str, _author: str, args: Args) -> dict[str, Any]:
    extension = args.get("extension") or None
    endpoint = _checked(check_extension, extension) if extension is not None else None
    return await desk.login(agent_id, endpoint)


async def pause(desk: AgentDesk, agent_id: str, _author: str, args: Args) -> dict[str, Any]:
    return await desk.pause(agent_id, _checked(check_pause_reason, args.get("reason")))


async def resume(desk: AgentDesk, agent_id: str, _author: str, _args: Args) -> dict[str, Any]:
    return await desk.resume(agent_id)


async def logout(desk: AgentDesk, agent_id: str, _author: str, _args: Args) -> dict[str, Any]:
    return await desk.logout(agent_id)


async def end_wrap_up(desk: AgentDesk, agent_id: str, _author: str, _args: Args) -> dict[str, Any]:
    return await desk.end_wrap_up(agent_id)


async def set_outcome(desk: AgentDesk, agent_id: str, author: str, args: Args) -> dict[str, Any]:
    outcome = text_arg(args, "outcome", 32, required=True)
    if outcome not in desk.outcomes:
        raise CommandInvalid(f"outcome must be one of {', '.join(desk.outcomes)}")
    return await desk.set_outcome(agent_id, call_id_arg(args), outcome, text_arg(args, "note", MAX_NOTE), author)


async def dismiss(desk: AgentDesk, agent_id: str, _author: str, args: Args) -> dict[str, Any]:
    return await desk.dismiss(agent_id, call_id_arg(args))


async def dial(desk: AgentDesk, agent_id: str, _author: str, args: Args) -> dict[str, Any]:
    return await desk.dial(agent_id, text_arg(args, "number", 40, required=True))


async def create_ticket(desk: AgentDesk, agent_id: str, author: str, args: Args) -> dict[str, Any]:
    call_id = call_id_arg(args) if args.get("call_id") else None
    return await desk.create_ticket(agent_id, call_id, text_arg(args, "subject", 200, required=True),
                                    text_arg(args, "description", 10_000), author)


async def link_ticket(desk: AgentDesk, agent_id: str, author: str, args: Args) -> dict[str, Any]:
    return await desk.link_ticket(agent_id, call_id_arg(args), int_arg(args, "ticket_id"), author)


async def create_contact(desk: AgentDesk, agent_id: str, _author: str, args: Args) -> dict[str, Any]:
    call_id = call_id_arg(args) if args.get("call_id") else None
    numbers = args.get("numbers", [])
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers) or len(numbers) > 10:
        raise CommandInvalid("numbers must be a list of at most 10 phone numbers")
    return await desk.create_contact(agent_id, call_id, name=text_arg(args, "name", 200, required=True),
                                     numbers=[n.strip() for n in numbers if n.strip()],
                                     email=text_arg(args, "email", 254), company=text_arg(args, "company", 200))


async def ping(_desk: AgentDesk, _agent_id: str, _author: str, _args: Args) -> dict[str, Any]:
    return {"pong": True}


COMMANDS: dict[str, Command] = {
    "login": login, "pause": pause, "resume": resume, "logout": logout, "end_wrap_up": end_wrap_up,
    "set_outcome": set_outcome, "dismiss": dismiss, "dial": dial, "create_ticket": create_ticket,
    "link_ticket": link_ticket, "create_contact": create_contact, "ping": ping,
}  # fmt: skip
