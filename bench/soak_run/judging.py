"""Judging each soak call against its scenario, from the server's records and from AMI."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from bench.soak_run.calls import Call, Calls
from cti.db import make_database
from cti.db.models import CallRecord
from cti.settings import DatabaseSettings
from tickets.models import Recording, Ticket

EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {  # outcome, parts of the IVR path
    "queue": ("answered", ("main:1", "queue:support", ":answered")),
    "voicemail": ("voicemail", ("main:9", "voicemail:request")),
    "abandon": ("abandoned", ("main:2", "queue:backoffice")),
}


async def records(database_url: str, uids: list[str]) -> tuple[dict[str, CallRecord], dict[int, Recording],
                                                                dict[int, Ticket]]:
    """The server's rows for our calls: calls by uniqueid, recordings by call id, tickets by id."""
    db = make_database(DatabaseSettings(url=database_url))
    try:
        async with db.session() as session:
            rows = {row.uniqueid: row for row in await session.scalars(
                select(CallRecord).where(CallRecord.uniqueid.in_(uids)))}
            # only ours: the server's orphan recovery also registers other runs' files from the shared folder
            found = {r.call_id: r for r in await session.scalars(select(Recording).where(Recording.uniqueid.in_(uids)))
                     if r.call_id is not None}
            tickets = {t.id: t for t in await session.scalars(select(Ticket).where(Ticket.source == "voicemail"))}
        return rows, found, tickets
    finally:
        await db.close()


def judge(call: Call, row: CallRecord | None, recording: Recording | None, ticket: Ticket | None) -> list[str]:
    """Why ``call`` did not end as its scenario expects (empty: it did)."""
    found = list(call.problems)
    if call.first_command_at is None:
        found.append("no AGI command: the call never reached our server")
    if call.ended_at is None:
        found.append("still up after the drain")
    if row is None:
        return [*found, "no call row"]
    outcome, parts = EXPECTED[call.scenario]
    if row.outcome != outcome or row.ended_at is None:
        found.append(f"row: outcome {row.outcome}, ended {row.ended_at is not None} (expected {outcome})")
    missing = [part for part in parts if part not in row.path]
    if missing:
        found.append(f"path {row.path!r} lacks {missing}")
    if call.scenario == "queue" and (row.agent_id is None or row.answered_at is None or row.queue != "support"
                                     or row.disposition != "resolved"):
        found.append(f"queued record: queue {row.queue}, agent {row.agent_id}, answered {row.answered_at}, "
                     f"outcome set by the agent {row.disposition}")
    if call.scenario == "voicemail":
        if recording is None or recording.duration_s < 1.0:
            found.append(f"recording: {None if recording is None else recording.duration_s} s")
        elif ticket is None or ticket.source_key != f"recording:{recording.id}" or ticket.call_id != row.id:
            found.append(f"no ticket for recording {recording.id} (state {recording.state})")
    return found


def verdicts(calls: Calls, rows: dict[str, CallRecord], found: dict[int, Recording],
             tickets: dict[int, Ticket]) -> dict[str, Any]:
    by_scenario: dict[str, Counter[str]] = {name: Counter() for name in EXPECTED}
    failures = []
    for uid, call in calls.by_uid.items():
        row = rows.get(uid)
        recording = found.get(row.id) if row is not None else None
        ticket = tickets.get(recording.ticket_id) if recording is not None and recording.ticket_id else None
        problems = judge(call, row, recording, ticket)
        by_scenario[call.scenario].update(placed=1, ok=not problems, failed=bool(problems))
        if problems:
            failures.append({"call": uid, "scenario": call.scenario, "problems": problems})
    counts = {name: {key: counter[key] for key in ("placed", "ok", "failed")} for name, counter in by_scenario.items()}
    total = {key: sum(c[key] for c in counts.values()) for key in ("placed", "ok", "failed")}
    return {**total, "by_scenario": counts, "failures": failures[:30],
            "agi_commands": sum(call.commands for call in calls.by_uid.values()),
            "agi_channel_gone": dict(calls.gone.most_common())}
