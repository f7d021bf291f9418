"""The agent desktop's websocket, ``GET /ws/agent[?since=<seq>&stream=<id>]``.

The session says which agent the socket serves (an admin's API token may name one with ``?agent=``, for
integrations and load tests). On connect the desktop gets ``hello``: the agent, their state, the cards on their
screen, the last sequence number and the ``stream`` it counts on (:meth:`AgentEvents.stream`), and ``resumed``
true when every event after ``since`` could be replayed (they follow at once), false when the desktop must start
from this snapshot. A ``since`` is only trusted with the current ``stream``: the same number from a numbering
that started over (a restart on the in-process state, a flushed Redis), or with no stream, names other events.
Then live events; replies to its commands (:mod:`cti.agents.commands`); aiohttp's ping/pong heartbeat closes a
socket whose browser vanished.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from cti.acd.shared import AgentBusy
from cti.acd.store import AgentNotFound
from cti.agents.commands import COMMANDS, CommandInvalid
from cti.agents.desk import AgentDesk
from cti.agents.events import envelope
from cti.agents.hub import AgentHub, Buffered
from cti.agents.outbox import SocketOutbox
from cti.errors import CtiError
from cti.http.auth import requires
from cti.http.identity import Identity, identity_of
from cti.state.errors import StateError

log = logging.getLogger(__name__)

HUB_KEY: web.AppKey[AgentHub] = web.AppKey("agent_hub", AgentHub)
DESK_KEY: web.AppKey[AgentDesk] = web.AppKey("agent_desk", AgentDesk)
HEARTBEAT_S = 20.0
MAX_MESSAGE_BYTES = 64 * 1024
MAX_COMMANDS_IN_FLIGHT = 8
REPLAY_SETTLE_STEPS = 10
REPLAY_SETTLE_S = 0.02


class NoAgent(CtiError):
    code = "desktop.no_agent"


class BadMessage(CtiError):
    code = "desktop.bad_message"


def agent_of(request: web.Request, who: Identity) -> str:
    """The agent this socket serves: the session's; an admin API token may name one (integrations)."""
    named = request.query.get("agent", "")
    if who.via == "api-token" and who.role == "admin" and named:
        return named
    if who.agent_id:
        return who.agent_id
    raise NoAgent("this login is not linked to an ACD agent")


@requires("agent", "supervisor", "admin")
async def agent_socket(request: web.Request) -> web.StreamResponse:
    who = identity_of(request)
    try:
        agent_id = agent_of(request, who)
    except NoAgent as exc:
        return web.json_response({"error": exc.code, "message": str(exc)}, status=403)
    since = _since(request.query.get("since"))
    stream = request.query.get("stream", "")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    hub, desk = request.app[HUB_KEY], request.app[DESK_KEY]
    outbox = SocketOutbox(ws)
    hub.add(agent_id, outbox)
    try:
        await _greet(hub, desk, outbox, agent_id, since, stream)
        await _read_commands(ws, desk, outbox, agent_id, who.author)
    finally:
        hub.remove(agent_id, outbox)
        await outbox.aclose()
    return ws


def _since(value: str | None) -> int | None:
    """``?since=`` as a sequence number; anything else (``²`` is a digit to ``isdigit``, not to ``int``) is none."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 19 else None


async def _greet(hub: AgentHub, desk: AgentDesk, outbox: SocketOutbox, agent_id: str, since: int | None,
                 stream: str) -> None:
    """``hello`` first, then what was missed (when it can all be replayed), then the live events held meanwhile.
    The stream is read before the counter (see :meth:`AgentEvents.stream`)."""
    current: str | None
    try:
        current = await desk.events.stream(agent_id)
        last_seq = await desk.events.last_seq(agent_id)
        snapshot = await desk.snapshot(agent_id)
    except StateError:
        current, last_seq = None, 0
        snapshot = {"agent": {"id": agent_id}, "status": None, "cards": [], "degraded": True}
    trusted = since if current is not None and stream == current else None
    missed = await _replay(hub, agent_id, trusted, last_seq)
    hello = {**snapshot, "last_seq": last_seq, "stream": current, "resumed": missed is not None,
             "replayed": len(missed or [])}
    first = [json.dumps(envelope("hello", hello, None, agent_id), separators=(",", ":"))]
    outbox.open(first + [item.text for item in missed or []], last_seq)


async def _replay(hub: AgentHub, agent_id: str, since: int | None, last_seq: int) -> list[Buffered] | None:
    """What the desktop missed; the newest events may still be on their way from another node's publish, so a
    gap is given a moment to fill before the desktop is told to start afresh."""
    if since is None or since > last_seq:  # ahead of the shared counter: it was lost, the desktop's view too
        return None
    for _ in range(REPLAY_SETTLE_STEPS):
        missed = hub.replay(agent_id, since, last_seq)
        if missed is not None:
            return missed
        await asyncio.sleep(REPLAY_SETTLE_S)
    return hub.replay(agent_id, since, last_seq)


async def _read_commands(ws: web.WebSocketResponse, desk: AgentDesk, outbox: SocketOutbox, agent_id: str,
                         author: str) -> None:
    running: set[asyncio.Task[None]] = set()
    async for message in ws:
        if message.type is not WSMsgType.TEXT:
            if message.type is WSMsgType.BINARY:
                outbox.send_now(_reply(agent_id, None, error=("desktop.bad_message", "send JSON text frames")))
            continue
        if len(running) >= MAX_COMMANDS_IN_FLIGHT:
            outbox.send_now(_reply(agent_id, None, error=("desktop.too_many", "wait for the replies to your commands")))
            continue
        task = asyncio.create_task(_run(desk, outbox, agent_id, author, message.data))
        running.add(task)
        task.add_done_callback(running.discard)
    for task in running:
        task.cancel()


async def _run(desk: AgentDesk, outbox: SocketOutbox, agent_id: str, author: str, text: str) -> None:
    reply_to: Any = None
    try:
        request = _request(text)
        reply_to, name, args = request.get("id"), request.get("cmd"), request.get("args")
        args = {} if args is None else args  # absent or null: no arguments; [], "", 0... are not an object
        command = COMMANDS.get(name) if isinstance(name, str) else None
        if command is None:
            raise CommandInvalid(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
        if not isinstance(args, dict):
            raise CommandInvalid("args must be a JSON object")
        result = await command(desk, agent_id, author, args)
    except (CtiError, AgentBusy, AgentNotFound) as exc:
        outbox.send_now(_reply(agent_id, reply_to, error=(exc.code, str(exc))))
    except Exception:
        log.exception("agent %s: command failed", agent_id)
        outbox.send_now(_reply(agent_id, reply_to, error=("desktop.failed", "the server could not do it; try again")))
    else:
        outbox.send_now(_reply(agent_id, reply_to, result=result))


def _request(text: str) -> dict[str, Any]:
    """The command object in a text frame. JSON nested too deep for the parser (``RecursionError``) or holding a
    number of more than 4300 digits (``ValueError``) is as unreadable as no JSON at all."""
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise BadMessage("not JSON") from None
    if not isinstance(request, dict):
        raise CommandInvalid("a command is a JSON object {\"id\", \"cmd\", \"args\"}")
    return request


def _reply(agent_id: str, reply_to: Any, *, result: dict[str, Any] | None = None,
           error: tuple[str, str] | None = None) -> str:
    ok = error is None
    data: dict[str, Any] = {"reply_to": reply_to if isinstance(reply_to, (str, int)) else None, "ok": ok}
    if error is not None:
        data["error"], data["message"] = error
    else:
        data["result"] = result
    message = envelope("reply", data, None, agent_id)
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate the desktop sent (``"\\ud800"``), echoed: escape it back
        text = json.dumps(message, separators=(",", ":"))
    return text


def add_routes(app: web.Application, hub: AgentHub, desk: AgentDesk) -> None:
    app[HUB_KEY], app[DESK_KEY] = hub, desk
    app.router.add_get("/ws/agent", agent_socket)
