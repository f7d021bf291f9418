"""Real calls through the local Asterisk into our FastAGI server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cti.agi import AgiSession, ScriptRegistry
from cti.ami import AmiClient
from cti.channels import ChannelTracker
from cti.db import Database
from cti.prompts import PromptStore
from cti.scripts.incoming import IncomingCall
from tests.plugins.asterisk import EventLog, place_simulated_call
from tests.support.calls import finished_call
from tests.support.ivr import ivr_service

pytestmark = pytest.mark.real
AFTER_GREETING = "w" * 8  # SendDTMF pauses 0.5 s per 'w': the caller presses during the menu, not the greeting


async def test_script_answers_plays_reads_dtmf_and_hangs_up(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
) -> None:
    seen: dict[str, object] = {}
    done = asyncio.Event()
    tracker = ChannelTracker(ami)
    await tracker.resync()

    @agi_registry.register("incoming")
    async def probe(session: AgiSession) -> None:
        seen["env"] = session.env
        await session.answer()
        seen["tracked"] = session.env.uniqueid in tracker.live
        seen["stream"] = await session.stream_file(prompt_store.playable("en", "welcome"))
        seen["data"] = await session.get_data(prompt_store.playable("en", "main-menu"), 8000, 1)
        await session.hangup()
        done.set()

    caller = f"555{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, "5551000", f'"Hélène Test" <{caller}>', digits=AFTER_GREETING + "5", hold=15)
    await asyncio.wait_for(done.wait(), 30)

    env = seen["env"]
    assert env.callerid == caller  # type: ignore[attr-defined]
    assert env.calleridname == "Hélène Test"  # type: ignore[attr-defined]
    assert env.extension == "5551000"  # type: ignore[attr-defined]
    assert seen["data"].digits == "5"  # type: ignore[attr-defined]
    hangup = await ami_events.wait_for("Hangup", Uniqueid=env.uniqueid)  # type: ignore[attr-defined]
    assert hangup.get("CallerIDNum") == caller
    assert ami_events.matching("AGIExecStart", Uniqueid=env.uniqueid)  # type: ignore[attr-defined]
    assert seen["tracked"] is True
    assert env.uniqueid not in tracker.live  # type: ignore[attr-defined]


async def test_unknown_number_hears_a_prompt_and_is_recorded(
    ami: AmiClient, agi_registry: ScriptRegistry, prompt_store: PromptStore, database: Database,
) -> None:
    agi_registry.register("incoming")(IncomingCall(database, prompt_store, ivr_service(database, prompt_store.root)))
    caller = f"557{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, "5559999", caller, hold=10)
    row = await finished_call(database, caller)
    assert row.outcome == "unknown_number"
    assert row.path == "unknown-number"


async def test_server_down_gives_the_dialplan_fallback_not_dead_air(
    ami: AmiClient, ami_events: EventLog, real_settings: object,
) -> None:
    """Nothing listens on the AGI URL: Asterisk must still play the fallback prompt and hang up."""
    from tests.plugins.asterisk import set_agi_url

    await set_agi_url(ami, "agi://127.0.0.1:9")
    try:
        caller = f"558{uuid.uuid4().int % 10**7:07d}"
        await place_simulated_call(ami, "5551000", caller, hold=15)
        playback = await ami_events.wait_for("Newexten", timeout=20, Application="Playback",
                                             CallerIDNum=caller)
        assert "technical-problem" in playback.get("AppData", "") or playback.get("AppData")
        await ami_events.wait_for("Hangup", timeout=20, CallerIDNum=caller)
    finally:
        settings = real_settings
        await set_agi_url(ami, f"agi://{settings.agi.advertised_host}:{settings.agi.port}")  # type: ignore[attr-defined]
