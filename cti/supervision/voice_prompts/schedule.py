"""The background task that applies scheduled activations while nobody looks at the page.

Reads apply them too (:meth:`PromptLibrary.apply_due`), so this task only matters for calls: it makes the
played file change within ``POLL_S`` of the instant. A failed round is logged and retried next round; the
task never stops on its own. Several nodes may run it at once: activating a version twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cti.outage_log import OutageLog
from cti.supervision.voice_prompts.library import PromptLibrary

log = logging.getLogger(__name__)
POLL_S = 5.0


async def run_schedule(library: PromptLibrary, poll_s: float = POLL_S) -> None:
    failures = OutageLog(log, "prompts: could not apply the scheduled activations")
    while True:
        try:
            changed = await library.apply_due()
        except Exception as exc:  # the database or the disk failed this round: try again next round
            failures.failed(exc)
        else:
            failures.ok()
            if changed:
                log.info("prompts: %d scheduled activation(s) applied", changed)
        await asyncio.sleep(poll_s)


def start_schedule(library: PromptLibrary, poll_s: float = POLL_S) -> asyncio.Task[None]:
    return asyncio.create_task(run_schedule(library, poll_s), name="prompt-schedule")


async def stop_schedule(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
