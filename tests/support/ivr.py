"""IVR test helpers: fixed instants, an IVR service on a test database, and a scripted caller's keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.demo import seed_demo
from cti.ivr.service import IvrService
from cti.ivr.simulator import Step
from cti.prompts import PromptStore

PARIS = ZoneInfo("Europe/Paris")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=PARIS)  # the demo help desk is open
MONDAY_20 = datetime(2026, 11, 23, 20, 0, tzinfo=PARIS)  # closed: opens again Tuesday 08:30
CHRISTMAS_10 = datetime(2026, 12, 25, 10, 0, tzinfo=PARIS)  # a public holiday in France

# A small desk for real calls: weekdays 08:30-18:00 in Paris, French holidays, one menu (1 ends, 9 leaves
# a message), short timeouts so retries do not take long.
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
TEST_DESK: dict[str, Any] = {
    "number": "5553000", "name": "IVR test desk", "language": "en",
    "hours": {"timezone": "Europe/Paris", "weekly": {day: ["08:30-18:00"] for day in WEEKDAYS},
              "holidays": {"country": "FR"}},
    "flow": {"start": "hours", "nodes": {
        "hours": {"type": "hours", "open": "welcome", "closed": "closed", "holiday": "holiday"},
        "welcome": {"type": "play", "prompts": ["welcome"], "next": "main"},
        "main": {"type": "menu", "prompt": "main-menu", "options": {"1": "done", "9": "message"},
                 "timeout_s": 2, "max_retries": 2, "on_failure": "no-choice"},
        "done": {"type": "hangup", "prompts": ["goodbye"]},
        "message": {"type": "voicemail", "reason": "request"},
        "no-choice": {"type": "voicemail", "reason": "overflow"},
        "closed": {"type": "play", "prompts": ["closed"], "say_next_opening": True, "next": "closed-message"},
        "holiday": {"type": "play", "prompts": ["holiday"], "say_next_opening": True, "next": "closed-message"},
        "closed-message": {"type": "voicemail", "reason": "closed"},
    }},
}


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


async def demo_ivr(database: Database, instant: datetime = MONDAY_10, prompts_dir: Path = NO_PROMPTS) -> IvrService:
    """An IVR service whose database holds the demo numbers (demo/services/*.yaml)."""
    ivr = ivr_service(database, prompts_dir, instant)
    await seed_demo(ivr)
    return ivr


def played(prompt: str, language: str = "en") -> Step:
    return Step("play", prompt=prompt, language=language)


def read(prompt: str, key: str, language: str = "en") -> Step:
    return Step("read", prompt=prompt, language=language, key=key)


def said(when: str, language: str = "en") -> Step:
    return Step("say_datetime", language=language, when=when)
