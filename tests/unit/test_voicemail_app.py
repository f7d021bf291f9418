"""The composed server: a caller sent to ``agi://.../voicemail?reason=overflow`` ends as a ticket with the audio,
even on a server with no speech model installed (the ticket then says "not transcribed")."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from cti.app import build_app
from cti.db import Database
from cti.db.migrate import upgrade_async
from cti.db.models import CallRecord
from tests.fakes.agi_peer import AgiPeer, asterisk_env
from tests.fakes.ami_peer import AmiPeer
from tests.fakes.voicemail_asterisk import FakeAsterisk
from tests.support.app import app_settings
from tickets.models import Attachment, Recording, Ticket

TOKEN = "v" * 32


async def test_voicemail_through_the_composed_app_becomes_a_ticket(tmp_path: Path) -> None:
    ami = AmiPeer()
    await ami.start()
    settings = app_settings(tmp_path, ami.port, CTI_TRANSCRIPTION__MODELS_DIR=str(tmp_path / "no-models"),
                            CTI_TRANSCRIPTION__WORKERS="1", CTI_SECURITY__API_TOKENS=f'{{ "{TOKEN}" = "agent" }}')
    await upgrade_async(settings.database)
    app = build_app(settings)
    await app.start()
    try:
        asterisk = FakeAsterisk([(3.0, "hangup")])
        env = asterisk_env("voicemail?reason=overflow", extension="5551000", callerid="0612345678")
        peer = await AgiPeer(app.agi.port, asterisk, env=env).run()
        assert peer.errors == []
        [ticket] = await _filed(app.db)
        [recording] = await _rows(app.db, Recording)
        [attachment] = await _rows(app.db, Attachment)
        [call] = await _rows(app.db, CallRecord)
        listed, audio = await _through_the_api(app.http_port, ticket.id)
    finally:
        await app.stop()
        await ami.close()
    assert (ticket.source, ticket.caller_number, ticket.call_id) == ("voicemail", "0612345678", call.id)
    assert "no speech model for language 'en'" in ticket.description
    assert (recording.reason, recording.state, recording.ticket_id) == ("overflow", "not_transcribed", ticket.id)
    assert (tmp_path / "media" / attachment.path).is_file()
    assert (call.outcome, call.path) == ("voicemail", "voicemail:overflow")
    assert [t["id"] for t in listed["tickets"]] == [ticket.id]
    assert audio[:4] == b"RIFF"


async def _through_the_api(port: int, ticket_id: int) -> tuple[dict[str, Any], bytes]:
    """An agent's browser: the ticket list, then the audio from the attachment's signed URL, with no token."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{base}/api/tickets", params={"source": "voicemail"}) as response:
            listed = await response.json()
        async with http.get(f"{base}/api/tickets/{ticket_id}") as response:
            url = (await response.json())["attachments"][0]["url"]
    async with aiohttp.ClientSession() as player, player.get(base + url) as response:  # no header, as <audio>
        return listed, await response.read()


async def _rows(db: Database, model: type[Any]) -> list[Any]:
    async with db.session() as session:
        return list(await session.scalars(select(model)))


async def _filed(db: Database) -> list[Ticket]:
    """The pipeline runs in the background: wait (bounded) for its ticket."""
    async with asyncio.timeout(30):
        while True:
            tickets = await _rows(db, Ticket)
            if tickets:
                return tickets
            await asyncio.sleep(0.05)


def test_only_installed_models_are_warmed_up(tmp_path: Path) -> None:
    from cti.settings import TranscriptionSettings
    from tickets.voicemail.wiring import installed_languages

    (tmp_path / "fr" / "am").mkdir(parents=True)
    (tmp_path / "fr" / "am" / "final.mdl").write_bytes(b"model")
    (tmp_path / "en").mkdir()  # an empty folder is not a model
    assert installed_languages(TranscriptionSettings(models_dir=tmp_path)) == ["fr"]
