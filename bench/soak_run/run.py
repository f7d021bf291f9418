"""One soak run from start to end: the private server, database and media folder, the calls, the drain, the result."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import machine
from bench.sipp import probes
from bench.soak_run.calls import Calls, place
from bench.soak_run.desk import seed, staff
from bench.soak_run.desktops import Desktops
from bench.soak_run.judging import records, verdicts
from bench.soak_run.report import report
from bench.soak_run.sampling import Sampler
from cti.ami import AmiClient
from cti.settings import Settings, load_settings
from tests.support.server_process import ServerProcess


async def run_soak(options: argparse.Namespace) -> dict[str, Any]:
    """The whole run; the result as a JSON-ready dict (``ok``: no failed call and memory not growing)."""
    os.environ.setdefault("CTI_CONFIG", str(options.config))
    settings = load_settings(options.config)
    work = Path(tempfile.mkdtemp(prefix="cti-soak-"))
    (work / "models").mkdir()  # no speech model: voicemail tickets are filed "not transcribed", at once
    media = private_media(settings.paths.media_dir)
    calls = Calls(prefix=media.name)
    database_url = options.database_url or f"sqlite+aiosqlite:///{work}/soak.sqlite3"
    if options.postgres:
        database_url = await postgres_database(options.postgres, calls.prefix, create=True)
    server = ServerProcess(database_url, work / "server.log",
                           {"CTI_TRANSCRIPTION__MODELS_DIR": str(work / "models"), "CTI_AGI__HOST": "127.0.0.1",
                            "CTI_PATHS__MEDIA_DIR": str(media)})
    load_before, host = os.getloadavg()[0], machine()
    await seed(server, work, options.agents)
    ami = AmiClient(settings.ami)
    await ami.start()
    await ami.wait_connected(10)
    ami.on_event("*", calls.on_event)
    link_lost: list[float] = []  # an Asterisk restarted by someone else mid-run: its calls are lost, not ours to judge

    async def lost() -> None:
        link_lost.append(round(time.monotonic() - sampler.started, 1))

    ami.on_disconnected(lost)
    sampler = Sampler(server, ami, calls, options.sample_every)
    result: dict[str, Any] = {}
    try:
        await server.start()
        await staff(server, options.agents)
        global_url = await probes.global_variable(ami, "CTI_AGI_URL")  # left alone: calls carry their own
        desktops = Desktops(server, [f"agent{n:02d}" for n in range(1, options.agents + 1)])
        background = [asyncio.create_task(sampler.run()), asyncio.create_task(desktops.run())]
        wall = await drive(options, server, ami, calls, settings)
        await settle(server, calls, database_url, options.drain)
        sampler.samples.append(await sampler.sample())
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        status = await server.status()
        rows, found, tickets = await records(database_url, list(calls.by_uid))
        result = report(options, host, load_before, wall, calls, verdicts(calls, rows, found, tickets), status,
                        sampler)
        result["setup"] |= {"our_agi_url": server.agi_url, "global_agi_url": global_url}
        result["desktops"] = {"events": dict(desktops.events), "errors": desktops.errors[:10]}
        if desktops.errors:
            result["ok"] = False
    finally:
        await server.stop()
        await ami.stop()
        if options.postgres and not options.keep:  # also when the run is stopped (SIGTERM, Ctrl-C)
            await postgres_database(options.postgres, calls.prefix, create=False)
        if not options.keep_media:
            shutil.rmtree(media, ignore_errors=True)
    result["ami_link_lost_at_s"] = link_lost
    if link_lost:
        result["ok"] = False
    result["server_log"] = probes.problems((work / "server.log").read_text(errors="replace").splitlines())
    result["recordings_kept_in"] = str(media) if options.keep_media else None
    result["files"] = str(work)
    if result["ok"] and not options.keep:
        shutil.rmtree(work, ignore_errors=True)
        result["files"] = None
    return result


async def drive(options: argparse.Namespace, server: ServerProcess, ami: AmiClient, calls: Calls,
                settings: Settings) -> float:
    """Place the calls at a steady rate for ``duration`` s, then wait for them to end; the wall time."""
    started, tasks = time.monotonic(), set()
    total = int(options.duration * options.rate)
    for number in range(total):
        await asyncio.sleep(max(0.0, started + number / options.rate - time.monotonic()))
        task = asyncio.create_task(place(ami, calls, settings, number, server.agi_url, options.agent_hold))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)

    async def ended() -> bool:
        return calls.live() == 0

    await wait_until(ended, options.drain)
    return time.monotonic() - started


async def settle(server: ServerProcess, calls: Calls, database_url: str, timeout: float) -> None:
    """After the last hang-up: the server closes its sessions and files the voicemail tickets."""

    async def idle() -> bool:
        return int((await server.status())["agi"]["active_sessions"]) == 0

    async def filed() -> bool:
        rows, found, tickets = await records(database_url, list(calls.by_uid))
        wanted = [found.get(row.id) for uid, row in rows.items() if calls.by_uid[uid].scenario == "voicemail"]
        disposed = all(row.disposition for uid, row in rows.items() if calls.by_uid[uid].scenario == "queue")
        return disposed and all(r is not None and r.ticket_id in tickets for r in wanted)

    await wait_until(idle, timeout)
    await wait_until(filed, timeout, every=2.0)


async def wait_until(check: Any, timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


async def postgres_database(server_url: str, name: str, *, create: bool) -> str:
    """Create (or drop) the run's own database on the PostgreSQL server of ``server_url``; its URL."""
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def private_media(shared: Path) -> Path:
    """A media folder of our own inside the shared one (Asterisk sees the same path): the server's recordings
    and its orphan recovery stay there, away from other runs' files; prompts are the shared ones. Its name
    (``soak<5 digits>``, short: it prefixes channel ids) is also the run's id, claimed by creating the folder,
    so soaks started in the same second do not take the same one."""
    for _ in range(100):
        media = shared / f"soak{random.randrange(100_000):05d}"
        try:
            media.mkdir()
        except FileExistsError:
            continue
        (media / "prompts").symlink_to("../prompts")
        return media
    raise RuntimeError(f"no free soak folder name in {shared}")
