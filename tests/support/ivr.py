"""IVR test helpers: fixed instants, an IVR service on a test database, and a scripted caller's keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.ivr.service import IvrService
from cti.prompts import PromptStore

PARIS = ZoneInfo("Europe/Paris")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=PARIS)  # the demo help desk is open
MONDAY_20 = datetime(2026, 11, 23, 20, 0, tzinfo=PARIS)  # closed: opens again Tuesday 08:30
CHRISTMAS_10 = datetime(2026, 12, 25, 10, 0, tzinfo=PARIS)  # a public holiday in France


def fixed_clock(instant: datetime) -> Callable[[], datetime]:
    return lambda: instant


NO_PROMPTS = Path("/nonexistent/cti-prompts")  # validation then knows the catalog's prompts only


def ivr_service(database: Database, prompts_dir: Path = NO_PROMPTS, instant: datetime = MONDAY_10) -> IvrService:
    return IvrService(database, PromptStore(prompts_dir), CallerDirectory(database, "FR"), fixed_clock(instant))


def keys_by_prompt(keys: Mapping[str, str], hang_up_on: str | None = None) -> Callable[[str], str]:
    """An AgiPeer responder: a menu prompt named in ``keys`` is answered by that key while it plays;
    other prompts play to the end; WAIT FOR DIGIT times out; ``hang_up_on`` (a prompt) hangs up there."""

    def reply(command: str) -> str:
        if hang_up_on is not None and f"/{hang_up_on} " in command + " ":
            return "HANGUP\n200 result=-1"
        if command.startswith("STREAM FILE"):
            for prompt, key in keys.items():
                if f"/{prompt} " in command and key:
                    return f"200 result={ord(key)} endpos=8000"
            return "200 result=0 endpos=8000"
        return "200 result=0"

    return reply
