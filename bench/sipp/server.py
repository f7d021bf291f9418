"""The server under test for bench/ivr_load.py: ``cti serve`` in a subprocess, with its own AGI and HTTP
ports, database and API token, so that a run touches nothing of the developer's own server."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from cti.db import make_database
from cti.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the server under test -----------------------------------------------------------------------


DESK = Path(__file__).with_name("desk.yaml")  # the number the load calls dial


class Server:
    """``cti serve`` in a subprocess with private ports, database and API token."""

    def __init__(self, work: Path, config: Path, database_url: str) -> None:
        self.agi_port, self.http_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
        self.token = secrets.token_hex(24)
        self.database_url = database_url
        self.log = work / "server.log"
        self.env = os.environ | {
            "CTI_CONFIG": str(config),
            "CTI_DATABASE__URL": database_url,
            "CTI_AGI__HOST": "127.0.0.1",
            "CTI_AGI__PORT": str(self.agi_port),
            "CTI_HTTP__HOST": "127.0.0.1",
            "CTI_HTTP__PORT": str(self.http_port),
            "CTI_SECURITY__API_TOKENS": f'{{ "{self.token}" = "admin" }}',
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def seed(self, work: Path) -> None:
        """``cti demo`` (migrations, demo numbers, missing prompts), then the benchmark's own desk."""
        with (work / "demo.log").open("wb") as out:
            for command in (["demo"], ["ivr", "import", str(DESK)]):
                done = subprocess.run([sys.executable, "-m", "cti", *command], env=self.env, stdout=out,
                                      stderr=subprocess.STDOUT, cwd=ROOT, check=False)
                if done.returncode:
                    raise SystemExit(f"cti {' '.join(command)} failed ({done.returncode}): see {work / 'demo.log'}")

    async def start(self, timeout: float = 30.0) -> None:
        with self.log.open("wb") as out:
            self.process = await asyncio.to_thread(
                subprocess.Popen, [sys.executable, "-m", "cti", "serve"], env=self.env, stdout=out,
                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"cti serve exited ({self.process.returncode}): see {self.log}")
            try:
                if (await self.status())["healthy"]:
                    return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.2)
        raise SystemExit(f"cti serve not healthy after {timeout:.0f} s (AMI down?): see {self.log}")

    async def status(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.http_port}/api/status"
        async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Authorization": f"Bearer {self.token}"}, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            body: dict[str, Any] = await response.json()
            return body

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, 20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)

    async def call_rows(self, after_id: int) -> list[tuple[int, str, str]]:
        """(id, outcome, path) of the rows of the ``calls`` table after ``after_id``."""
        db = make_database(DatabaseSettings(url=self.database_url))
        try:
            async with db.session() as session:
                rows = await session.execute(
                    text("SELECT id, outcome, path FROM calls WHERE id > :after ORDER BY id"), {"after": after_id})
                return [(int(row[0]), str(row[1]), str(row[2] or "")) for row in rows]
        finally:
            await db.close()
