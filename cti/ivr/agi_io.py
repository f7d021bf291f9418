"""The flow engine's CallIO on a real call: prompts through Asterisk over FastAGI.

A menu key is read while its prompt plays (STREAM FILE with every key as an escape digit) and then
during the timeout (WAIT FOR DIGIT), so ``*`` and ``#`` are real options and a caller who knows the
menu does not have to listen to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from cti.agi import AgiSession
from cti.prompts import PromptStore

log = logging.getLogger(__name__)
ALL_KEYS = "0123456789*#"
LANGUAGE_VARIABLE = "CHANNEL(language)"
SOON = timedelta(days=6)  # within a week the weekday is enough: "Monday at 8:30"
# SAY DATETIME formats (Asterisk's say.c letters; quoted parts are sound files of the language).
FORMATS = {
    "en": ("A 'digits/at' IMp", "A dB 'digits/at' IMp"),
    "fr": ("A 'digits/at' H 'digits/oclock' M", "A d B 'digits/at' H 'digits/oclock' M"),
}


@dataclass
class AgiCallIO:
    session: AgiSession
    prompts: PromptStore
    instant: datetime  # the call's instant: "Monday" or "Monday 5 January" is decided against it
    prompt_timeout_s: float = 120.0

    async def set_language(self, language: str) -> None:
        """Asterisk's own sounds (days, numbers) and the dialplan fallback follow the caller's choice."""
        await self.session.set_variable(LANGUAGE_VARIABLE, language)

    async def play(self, prompt: str, language: str) -> None:
        await self.session.stream_file(self.prompts.playable(language, prompt), timeout=self.prompt_timeout_s)

    async def read_key(self, prompt: str, language: str, timeout_s: int) -> str:
        key = await self.session.stream_file(self.prompts.playable(language, prompt), ALL_KEYS,
                                             timeout=self.prompt_timeout_s)
        if key is None:
            key = await self.session.wait_for_digit(timeout_s * 1000)
        return key or ""

    async def say_datetime(self, when: datetime, language: str) -> None:
        """Said in the service's zone: ``when`` carries it (the schedule returns local instants)."""
        soon, far = FORMATS.get(language, FORMATS["en"])
        zone = getattr(when.tzinfo, "key", "UTC")
        fmt = soon if when - self.instant < SOON else far
        reply = await self.session.command("SAY DATETIME", int(when.timestamp()), "", fmt, zone)
        if reply.result == "-1":  # the caller heard part of it: a sound of that language is missing
            log.warning("SAY DATETIME failed on %s in %r (missing Asterisk sounds?)",
                        self.session.env.channel, language)
