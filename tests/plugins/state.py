"""State-backend fixtures: the contract suite runs on the in-process backend and the real Redis."""

from __future__ import annotations

# The Redis variants FAIL (never skip) when the server from `scripts/services.sh start` is down.
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cti.state import InMemoryStateBackend, RedisStateBackend, StateBackend, StateUnavailable

TEST_REDIS_URL_ENV = "CTI_TEST_REDIS_URL"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:56379/0"
PRIVATE_REDIS_PORT_ENV = "CTI_TEST_PRIVATE_REDIS_PORT"
DEFAULT_PRIVATE_REDIS_PORT = 56380


class FakeClock:
    """Injected into InMemoryStateBackend so expiry is tested without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class StateNodes:
    """The backend under test plus every other node sharing its data (one for memory, two for Redis).

    ``advance`` lets time pass: the fake clock for memory, a real sleep for Redis.
    """

    kind: str
    nodes: list[StateBackend]
    advance: Callable[[float], Awaitable[None]]

    @property
    def backend(self) -> StateBackend:
        return self.nodes[0]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared test Redis (``scripts/services.sh start``), overridable for CI."""
    return os.environ.get(TEST_REDIS_URL_ENV, DEFAULT_TEST_REDIS_URL)


@pytest.fixture
def state_key_prefix() -> str:
    """A fresh namespace per test, so tests (and parallel runs) never see each other's keys."""
    return f"cti-test:{uuid.uuid4().hex}:"


def _memory_nodes() -> StateNodes:
    clock = FakeClock()

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    return StateNodes("memory", [InMemoryStateBackend(clock=clock)], advance)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def _drop_state(nodes: StateNodes) -> None:
    """Remove the test's keys (best effort: a test about an outage may leave Redis unreachable)."""
    with contextlib.suppress(StateUnavailable):
        for key in await nodes.backend.keys(""):
            await nodes.backend.delete(key)
    for node in nodes.nodes:
        await node.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def state_nodes(
    request: pytest.FixtureRequest, redis_url: str, state_key_prefix: str
) -> AsyncIterator[StateNodes]:
    """Every contract test runs once per backend; the Redis one gets two nodes on one server."""
    if request.param == "memory":
        nodes = _memory_nodes()
    else:
        nodes = StateNodes(
            "redis", [RedisStateBackend(redis_url, state_key_prefix) for _ in range(2)], _sleep
        )
    yield nodes
    await _drop_state(nodes)


class RedisServerProcess:
    """A redis-server owned by one test, so it can be stopped without disturbing the shared one."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `bash scripts/services.sh install`")
        command = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready()

    def _wait_ready(self, deadline_seconds: float = 10.0) -> None:
        deadline = time.monotonic() + deadline_seconds
        while not self._answers_ping():
            if self._process is not None and self._process.poll() is not None:
                self._fail("exited during start")
            if time.monotonic() > deadline:
                self._fail(f"not answering PING after {deadline_seconds}s")
            time.sleep(0.05)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _fail(self, why: str) -> None:
        tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else "(no log)"
        self.stop()
        pytest.fail(f"private redis-server on port {self.port} {why}; log tail:\n{tail}")

    def stop(self) -> None:
        """Terminate and reap the process (an unreaped child would be a ResourceWarning, i.e. an error)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServerProcess]:
    """A started private redis-server on ``CTI_TEST_PRIVATE_REDIS_PORT`` (default 56380)."""
    port = int(os.environ.get(PRIVATE_REDIS_PORT_ENV, DEFAULT_PRIVATE_REDIS_PORT))
    server = RedisServerProcess(port, tmp_path)
    server.start()
    yield server
    server.stop()


