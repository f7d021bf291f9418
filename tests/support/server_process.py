"""`cti serve` in its own process, on a database and ports of the test's choosing, so a fault test can SIGKILL
the server in the middle of a call and start it again on the same database (as an admin's restart would).

The process reads the sandbox's configuration (``$CTI_CONFIG``: AMI secret, media folder) and this harness's
``CTI_*`` environment overrides (database, state backend, ports, an admin API token). Asterisk's
``CTI_AGI_URL`` global is left to the test (``tests.plugins.asterisk.set_agi_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
SETTLE_S = 90.0  # how long a fault test waits for a state before failing (a guard, never a measured figure)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = SETTLE_S,
                every: float = 0.2) -> float:
    """Poll ``check`` (the state lives in other processes: the server, Asterisk) until it holds; the seconds it
    took, for the figures a test prints; fails with ``what`` after ``timeout``."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            while not await check():  # noqa: ASYNC110 - nothing to await across processes: polled
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"still not {what} after {timeout:.0f} s") from None
    return time.monotonic() - started


def free_port() -> int:
    """A TCP port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """One `cti serve` process; ``start`` may be called again after ``kill`` (same ports, same database)."""

    database_url: str
    log_path: Path
    overrides: dict[str, str] = field(default_factory=dict)  # more CTI_* variables (state backend, node id...)
    http_port: int = field(default_factory=free_port)
    agi_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def agi_url(self) -> str:
        return f"agi://127.0.0.1:{self.agi_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def environment(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("CTI_") or name == "CTI_CONFIG"}
        env.update({
            "CTI_DATABASE__URL": self.database_url,
            "CTI_HTTP__PORT": str(self.http_port),
            "CTI_AGI__PORT": str(self.agi_port),
            "CTI_SECURITY__API_TOKENS": f'{{ "{self.token}" = "admin" }}',
            "PYTHONUNBUFFERED": "1",
            **self.overrides,
        })
        return env

    async def run_cli(self, *args: str) -> str:
        """``cti <args>`` with the server's environment (``db upgrade``, ``demo``...); its output, or a failure."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cti", *args, env=self.environment(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise AssertionError(f"cti {' '.join(args)} exited with {process.returncode}:\n{output.decode()[-3000:]}")
        return output.decode()

    async def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start the server and return once its HTTP status route and its AGI port both answer."""
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cti", "serve", env=self.environment(), stdout=log, stderr=log,
                stdin=asyncio.subprocess.DEVNULL)
        try:
            async with asyncio.timeout(timeout):
                while not (await self._http_answers() and await self._agi_listens()):
                    if self.process.returncode is not None:
                        raise AssertionError(f"cti serve exited with {self.process.returncode}:\n{self.log_tail()}")
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"cti serve not ready after {timeout}s:\n{self.log_tail()}") from None

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer takes the process."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (killed if it does not stop in time)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            await self.kill()

    async def status(self) -> dict[str, Any]:
        """``GET /api/status`` (healthy or not)."""
        report: dict[str, Any] = await self.get_json("/api/status")
        return report

    async def get_json(self, path: str) -> Any:
        return await self.request_json("GET", path)

    async def request_json(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        """An API call as the admin token; ``expect``: the status the test needs (else any answer is returned)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession() as http, http.request(
                method, self.base_url + path, headers=headers, json=body) as response:
            answer = await response.json()
            if expect is not None and response.status != expect:
                raise AssertionError(f"{method} {path} answered {response.status}, not {expect}: {answer}")
            return answer

    def log_tail(self, size: int = 6000) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        return ""

    async def _http_answers(self) -> bool:
        try:
            await self.status()
        except (aiohttp.ClientError, ValueError):
            return False
        return True

    async def _agi_listens(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.agi_port)
        except OSError:
            return False
        writer.close()  # a bare connect-and-close: our FastAGI server must shrug it off
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
