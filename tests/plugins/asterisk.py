"""Fixtures for tests against the real local Asterisk (scripts/asterisk-sandbox.sh).

They never skip: when Asterisk cannot be reached the test fails and says how to start it.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from panoramisk.message import Message

from cti.agi import FastAgiServer, ScriptRegistry
from cti.ami import AmiClient
from cti.prompts import PromptStore, build_placeholders, load_catalog
from cti.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
START_HINT = "start it with: bash scripts/setup.sh (or scripts/asterisk-sandbox.sh start)"


@pytest.fixture(scope="session")
def real_settings() -> Settings:
    """The local sandbox's settings (``$CTI_CONFIG``, written by scripts/setup.sh)."""
    settings = load_settings()
    if not settings.ami.secret.get_secret_value():
        pytest.fail(f"no AMI secret configured (CTI_CONFIG unset?); {START_HINT}")
    return settings


@pytest.fixture(scope="session")
def prompt_store(real_settings: Settings) -> PromptStore:
    """Prompts in the media folder Asterisk shares with us, built once if missing."""
    store = PromptStore(real_settings.paths.prompts_dir)
    build_placeholders(store, load_catalog())
    return store


@pytest.fixture
async def ami(real_settings: Settings) -> AsyncIterator[AmiClient]:
    client = AmiClient(real_settings.ami)
    await client.start()
    try:
        await client.wait_connected(10)
    except Exception as exc:
        await client.stop()
        pytest.fail(f"Asterisk AMI at {real_settings.ami.host}:{real_settings.ami.port} unreachable "
                    f"({exc!r}); {START_HINT}")
    yield client
    await client.stop()


@dataclass
class EventLog:
    """Every AMI event seen during a test, searchable by header values."""

    events: list[Message] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, event: Message) -> None:
        self.events.append(event)
        self.arrived.set()

    def matching(self, name: str, **headers: str) -> list[Message]:
        return [e for e in self.events if e.event == name
                and all(e.get(k) == v for k, v in headers.items())]

    async def wait_for(self, name: str, timeout: float = 10, **headers: str) -> Message:
        async with asyncio.timeout(timeout):
            while not (found := self.matching(name, **headers)):
                self.arrived.clear()
                await self.arrived.wait()
        return found[0]


@pytest.fixture
def ami_events(ami: AmiClient) -> EventLog:
    log = EventLog()
    ami.on_event("*", log.add)
    return log


@pytest.fixture
async def agi_registry(ami: AmiClient, real_settings: Settings) -> AsyncIterator[ScriptRegistry]:
    """A FastAGI server on a free port for this test; Asterisk's CTI_AGI_URL global points at it."""
    registry = ScriptRegistry()
    server = FastAgiServer(registry, real_settings.agi.model_copy(update={"port": 0}))
    await server.start()
    await set_agi_url(ami, f"agi://127.0.0.1:{server.port}")
    yield registry
    await set_agi_url(ami, f"agi://{real_settings.agi.advertised_host}:{real_settings.agi.port}")
    await server.stop()


async def set_agi_url(ami: AmiClient, url: str) -> None:
    await ami.send_action({"Action": "Setvar", "Variable": "CTI_AGI_URL", "Value": url})


async def place_simulated_call(ami: AmiClient, number: str, caller_id: str, *, digits: str = "",
                               play: str = "", hold: int = 20, context: str = "from-pstn") -> str:
    """A Local-channel caller dialling ``number``: its ;1 side (cti-sim) sends ``digits`` once answered."""
    variables = {"SIM_DIGITS": digits, "SIM_PLAY": play, "SIM_HOLD": str(hold)}
    return await ami.originate(f"Local/{number}@{context}", context="cti-sim", exten="s", priority=1,
                               caller_id=caller_id, variables=variables, timeout_ms=15_000)


def sandbox_command(*args: str) -> str:
    """Run scripts/asterisk-sandbox.sh (phones, status...); failure fails the test with its output."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "asterisk-sandbox.sh"), *args],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"asterisk-sandbox.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout
