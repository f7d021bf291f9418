"""Tickets for lost calls: a caller who hung up before being served gets a call-back ticket.

Off unless ``tickets.auto_abandoned_calls`` / ``tickets.auto_missed_calls`` is set. Keyed by the call's
Asterisk uniqueid (``call:<uniqueid>``), so a call reported twice (the IVR and then voicemail, a retry)
still gives one ticket. A caller without a number cannot be called back: no ticket, only a log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from cti.agi import AgiEnvironment
from cti.call_records import PATH_SEPARATOR
from cti.scripts.flow import CallContext
from cti.settings import TicketSettings
from tickets.models import Ticket
from tickets.types import NewTicket
from tickets.voicemail.ports import TicketFiler

log = logging.getLogger(__name__)

Kind = Literal["abandoned", "missed"]
_SOURCES: dict[Kind, str] = {"abandoned": "abandoned_call", "missed": "missed_call"}
_SUBJECTS = {
    "en": {"abandoned": "Abandoned call from {who}", "missed": "Missed call from {who}"},
    "fr": {"abandoned": "Appel abandonné de {who}", "missed": "Appel manqué de {who}"},
}
_DESCRIPTION = {
    "en": "The caller hung up before being served. Path in the voice menu: {path}. Please call back.",
    "fr": "L'appelant a raccroché avant d'être servi. Parcours dans le serveur vocal : {path}. Merci de rappeler.",
}
_NO_NUMBER = ("", "unknown", "anonymous")


@dataclass(frozen=True)
class LostCall:
    uniqueid: str
    kind: Kind
    caller_number: str = ""
    caller_name: str = ""
    language: str = "en"
    call_id: int | None = None
    path: str = ""


def enabled(settings: TicketSettings, kind: Kind) -> bool:
    return settings.auto_abandoned_calls if kind == "abandoned" else settings.auto_missed_calls


def lost_call_ticket(call: LostCall) -> NewTicket:
    language = call.language if call.language in _SUBJECTS else "en"
    who = f"{call.caller_name} <{call.caller_number}>" if call.caller_name else call.caller_number
    return NewTicket(
        subject=_SUBJECTS[language][call.kind].format(who=who)[:200], source=_SOURCES[call.kind],
        description=_DESCRIPTION[language].format(path=call.path or "-"), source_key=f"call:{call.uniqueid}"[:120],
        caller_number=call.caller_number[:64], caller_name=call.caller_name[:128], language=language,
        call_id=call.call_id,
    )


async def file_lost_call(tickets: TicketFiler, settings: TicketSettings, call: LostCall) -> Ticket | None:
    """The ticket (new or already filed for this call), or None when disabled or nobody to call back."""
    if not enabled(settings, call.kind):
        return None
    if call.caller_number.strip().lower() in _NO_NUMBER or not call.uniqueid:
        log.info("%s call %s has no caller number: no call-back ticket", call.kind, call.uniqueid)
        return None
    return await tickets.create(lost_call_ticket(call))


@dataclass
class AbandonedCallHook:
    """``IncomingCall(on_close=...)``: files a ticket when the incoming flow ends as ``abandoned``."""

    tickets: TicketFiler
    settings: TicketSettings

    async def __call__(self, env: AgiEnvironment, ctx: CallContext) -> None:
        if ctx.outcome != "abandoned" or not self.settings.auto_abandoned_calls:
            return
        call = LostCall(uniqueid=env.uniqueid, kind="abandoned", caller_number=env.callerid,
                        caller_name="" if env.calleridname == "unknown" else env.calleridname,
                        language=ctx.language, call_id=ctx.call_id, path=PATH_SEPARATOR.join(ctx.path))
        try:
            await file_lost_call(self.tickets, self.settings, call)
        except Exception:  # the call is over; a failed ticket must not turn into an error for the flow
            log.exception("abandoned call %s: ticket not filed", env.uniqueid)
