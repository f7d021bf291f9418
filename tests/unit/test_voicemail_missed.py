"""Call-back tickets for abandoned calls, and the incoming flow's after-close hook that files them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from cti.agi import FastAgiServer, ScriptRegistry
from cti.db import Database
from cti.demo import seed_demo
from cti.prompts import PromptStore
from cti.scripts.incoming import IncomingCall
from cti.settings import AgiSettings, TicketSettings
from tests.fakes.agi_peer import AgiPeer, asterisk_env
from tests.support.ivr import ivr_service, keys_by_prompt
from tickets.models import Ticket
from tickets.service import TicketService
from tickets.voicemail.missed import AbandonedCallHook, LostCall, file_lost_call

ON = TicketSettings(auto_abandoned_calls=True)


async def _tickets(db: Database) -> list[Ticket]:
    async with db.session() as session:
        return list(await session.scalars(select(Ticket)))


async def test_abandoned_call_files_one_ticket_per_call(database: Database) -> None:
    service = TicketService(database, ON)
    call = LostCall("1732350000.4", "abandoned", caller_number="0612345678", language="fr", path="welcome")
    first = await file_lost_call(service, ON, call)
    again = await file_lost_call(service, ON, call)
    assert first is not None and again is not None and again.id == first.id
    assert (first.source, first.source_key, first.subject) == (
        "abandoned_call", "call:1732350000.4", "Appel abandonné de 0612345678")
    assert "welcome" in first.description


async def test_nothing_filed_when_off_or_without_a_number(database: Database) -> None:
    service = TicketService(database, ON)
    off = await file_lost_call(service, TicketSettings(), LostCall("1.1", "abandoned", caller_number="0612345678"))
    anonymous = await file_lost_call(service, ON, LostCall("1.2", "abandoned", caller_number="anonymous"))
    missed_off = await file_lost_call(service, ON, LostCall("1.3", "missed", caller_number="0612345678"))
    assert off is None and anonymous is None and missed_off is None
    assert await _tickets(database) == []


async def test_incoming_flow_hang_up_files_a_call_back_ticket(database: Database, tmp_path: Path) -> None:
    ivr = ivr_service(database, tmp_path)
    await seed_demo(ivr)
    hook = AbandonedCallHook(TicketService(database, ON), ON)
    registry = ScriptRegistry()
    registry.register("incoming")(IncomingCall(database, PromptStore(tmp_path), ivr, on_close=hook))
    server = FastAgiServer(registry, AgiSettings(port=0))
    await server.start()

    try:
        caller = keys_by_prompt({}, hang_up_on="main-menu")
        await AgiPeer(server.port, caller, env=asterisk_env(extension="5551000")).run()
    finally:
        await server.stop(grace=1.0)
    [ticket] = await _tickets(database)
    assert (ticket.source, ticket.source_key, ticket.caller_number) == (
        "abandoned_call", "call:1732350000.1", "0612345678")
    assert ticket.call_id is not None
