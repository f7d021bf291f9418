"""A voicemail pipeline runner in its own process, made to hang at a chosen point so a test can SIGKILL it.

    python -m tests.support.voicemail_runner DB_URL MEDIA_DIR MARKER CRASH_POINT LEASE_S

``CRASH_POINT`` is ``transcribing`` (the transcriber hangs) or ``filed`` (the ticket is created, then the
runner hangs before marking the job done). ``MARKER`` is written when the runner reaches that point.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cti.db import make_database
from cti.settings import DatabaseSettings, TicketSettings, TranscriptionSettings
from tests.support.voicemail import FakeTranscriber, transcript
from tickets.models import Ticket
from tickets.service import TicketService
from tickets.types import NewTicket, Transcript
from tickets.voicemail.pipeline import VoicemailPipeline

HANG_S = 600.0


class HangingFiler(TicketService):
    """Creates the ticket for real, then hangs: the crash falls between the ticket and the job's end."""

    def __init__(self, *args: object, marker: Path, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.marker = marker

    async def create(self, new: NewTicket) -> Ticket:
        ticket = await super().create(new)
        self.marker.write_text(str(ticket.id))
        await asyncio.sleep(HANG_S)
        return ticket


class HangingTranscriber:
    """Writes the marker, then never finishes (its event loop keeps running, so the lease is renewed)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    async def transcribe(self, path: Path, language: str) -> Transcript:
        self.marker.write_text("transcribing")
        await asyncio.sleep(HANG_S)
        raise AssertionError("not reached")


async def main(url: str, media: Path, marker: Path, crash_point: str, lease_s: float) -> None:
    db = make_database(DatabaseSettings(url=url))
    settings = TranscriptionSettings(lease_s=lease_s, workers=1)
    if crash_point == "transcribing":
        pipeline = VoicemailPipeline(db, HangingTranscriber(marker), TicketService(db, TicketSettings()), settings,
                                     media, owner_id="doomed-runner")
    else:
        filer = HangingFiler(db, TicketSettings(), marker=marker)
        pipeline = VoicemailPipeline(db, FakeTranscriber([transcript("please call me back about the invoice")]),
                                     filer, settings, media, owner_id="doomed-runner")
    await pipeline.run_once()


if __name__ == "__main__":
    db_url, media_dir, marker_file, point, lease = sys.argv[1:6]
    asyncio.run(main(db_url, Path(media_dir), Path(marker_file), point, float(lease)))
