"""Redis state backend: the same contract as the in-process one, shared by several server nodes.

Connection failures surface as ``StateUnavailable`` quickly (a short retry budget, not redis-py's
default of ten) so a caller can fall back; the client keeps no broken state, so the next call after
Redis returns simply works. Compare-and-set is a Lua script, hence atomic across nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.typing import EncodableT, FieldT

from cti.state.base import Subscription, check_channels, check_ttl
from cti.state.errors import StateError, StateTypeError, StateUnavailable
from cti.state.memory import DEFAULT_QUEUE_SIZE, Mailbox

logger = logging.getLogger(__name__)

# KEYS[1] key; ARGV: expected-present flag, expected, new-present flag, new. SET KEEPTTL keeps the expiry.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
    if current ~= ARGV[2] then return 0 end
elseif current then
    return 0
end
if ARGV[3] == '1' then
    redis.call('SET', KEYS[1], ARGV[4], 'KEEPTTL')
else
    redis.call('DEL', KEYS[1])
end
return 1
"""

_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
_TYPE_ERROR_MARKERS = ("WRONGTYPE", "not an integer")
_GLOB_SPECIALS = frozenset("*?[]\\")
_SCAN_BATCH = 500
_SUBSCRIBE_TIMEOUT = 5.0
_RESUBSCRIBE_BACKOFF_MIN = 0.05
_RESUBSCRIBE_BACKOFF_MAX = 1.0


def _redacted(url: str) -> str:
    """The URL for messages and logs, without the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _glob_escape(text: str) -> str:
    """SCAN MATCH takes a glob; a prefix such as ``agent[1]`` must match literally."""
    return "".join("\\" + char if char in _GLOB_SPECIALS else char for char in text)


def _milliseconds(ttl: float | None) -> int | None:
    check_ttl(ttl)
    return None if ttl is None else max(1, round(ttl * 1000))


def _flag(value: str | None) -> tuple[str, str]:
    return ("0", "") if value is None else ("1", value)


class _ErrorMapper:
    """Turns redis-py exceptions into the project's, naming the server (never its password)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def unavailable(self, operation: str, error: BaseException) -> StateUnavailable:
        return StateUnavailable(f"redis at {self.where} unavailable during {operation}: {error}")

    @contextlib.contextmanager
    def translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE as exc:
            raise self.unavailable(operation, exc) from exc
        except redis_errors.ResponseError as exc:
            if any(marker in str(exc) for marker in _TYPE_ERROR_MARKERS):
                raise StateTypeError(f"{operation}: {exc}") from exc
            raise StateError(f"redis {operation} failed: {exc}") from exc
        except redis_errors.RedisError as exc:
            raise StateError(f"redis {operation} failed: {exc}") from exc


class RedisSubscription:
    """A PubSub connection pumped by a task into a ``Mailbox``.

    The pump survives outages: it reports one ``StateUnavailable`` to the reader, keeps trying to
    reconnect (redis-py re-subscribes on connect) and resumes delivery once Redis is back.
    """

    def __init__(self, pubsub: PubSub, prefix: str, errors: _ErrorMapper, queue_size: int) -> None:
        self._pubsub = pubsub
        self._prefix = prefix
        self._errors = errors
        self._mailbox = Mailbox(queue_size)
        self._pump_task: asyncio.Task[None] | None = None
        self._in_outage = False

    async def start(self, channels: tuple[str, ...]) -> None:
        """Subscribe and wait for every confirmation, so later publishes cannot be missed."""
        names = [self._prefix + channel for channel in dict.fromkeys(channels)]
        try:
            await self._subscribe(names)
        except BaseException:
            await self._close_pubsub()
            raise
        self._pump_task = asyncio.create_task(self._pump(), name="cti-state-subscription")

    async def _subscribe(self, names: list[str]) -> None:
        # translated() is outermost so the deadline's TimeoutError (an OSError) becomes StateUnavailable.
        with self._errors.translated("subscribe"):
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT):
                await self._pubsub.subscribe(*names)
                await self._await_confirmations(len(names))

    async def _await_confirmations(self, expected: int) -> None:
        confirmed = 0
        while confirmed < expected:
            message = await self._pubsub.get_message(timeout=None)
            if message is not None:
                confirmed += self._handle(message)

    def _handle(self, message: Mapping[str, Any]) -> int:
        """Deliver a published message; return 1 for a subscribe confirmation (0 otherwise)."""
        kind = message.get("type")
        if kind == "message":
            channel = str(message["channel"]).removeprefix(self._prefix)
            self._mailbox.deliver(channel, str(message["data"]))
        return 1 if kind == "subscribe" else 0

    async def _pump(self) -> None:
        backoff = _RESUBSCRIBE_BACKOFF_MIN
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (*_UNAVAILABLE, redis_errors.RedisError) as exc:
                self._report_outage(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RESUBSCRIBE_BACKOFF_MAX)
                continue
            if message is not None and self._handle(message):
                self._in_outage = False  # a (re-)subscribe confirmation: we are listening again
                backoff = _RESUBSCRIBE_BACKOFF_MIN

    def _report_outage(self, error: BaseException) -> None:
        """One StateUnavailable per outage tells the reader that messages may have been missed."""
        if not self._in_outage:
            self._in_outage = True
            logger.warning("state subscription lost its Redis connection: %s", error)
            self._mailbox.fail(self._errors.unavailable("subscription", error))

    def __aiter__(self) -> RedisSubscription:
        return self

    async def __anext__(self) -> tuple[str, str]:
        return await self._mailbox.__anext__()

    async def close(self) -> None:
        """Stop the pump first, so nothing reads the connection while it is being closed."""
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.wait([self._pump_task])  # unlike awaiting it, keeps a cancel of close() itself
            self._pump_task = None
        await self._mailbox.close()
        await self._close_pubsub()

    async def _close_pubsub(self) -> None:
        # redis-py leaves PubSub.aclose unannotated; the call itself is the documented API.
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class RedisStateBackend:
    """``StateBackend`` on Redis; keys and channels get ``key_prefix`` so deployments can share a server."""

    def __init__(
        self,
        url: str,
        key_prefix: str = "cti:",
        *,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        retries: int = 2,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_connections: int = 200,
    ) -> None:
        self._prefix = key_prefix
        self._queue_size = queue_size
        self._errors = _ErrorMapper(_redacted(url))
        # A blocking pool: past max_connections in flight, a command waits for a free connection (up to
        # command_timeout) instead of failing with "Too many connections" under a burst.
        self._redis = Redis.from_pool(
            BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=command_timeout,
                decode_responses=True,
                socket_connect_timeout=connect_timeout,
                socket_timeout=command_timeout,
                retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), retries),
            )
        )
        self._compare_and_set = self._redis.register_script(_COMPARE_AND_SET)
        self._subscriptions: weakref.WeakSet[RedisSubscription] = weakref.WeakSet()

    def _key(self, key: str) -> str:
        return self._prefix + key

    # --- strings --------------------------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        with self._errors.translated("get"):
            value = await self._redis.get(self._key(key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        px = _milliseconds(ttl)
        with self._errors.translated("set"):
            await self._redis.set(self._key(key), value, px=px)

    async def set_if_absent(self, key: str, value: str, ttl: float | None = None) -> bool:
        px = _milliseconds(ttl)
        with self._errors.translated("set_if_absent"):
            created = await self._redis.set(self._key(key), value, px=px, nx=True)
        return bool(created)

    async def compare_and_set(self, key: str, expected: str | None, new: str | None) -> bool:
        with self._errors.translated("compare_and_set"):
            swapped = await self._compare_and_set(keys=[self._key(key)], args=[*_flag(expected), *_flag(new)])
        return bool(swapped == 1)

    async def delete(self, key: str) -> bool:
        with self._errors.translated("delete"):
            removed = await self._redis.delete(self._key(key))
        return removed > 0

    async def incr(self, key: str, amount: int = 1) -> int:
        with self._errors.translated("incr"):
            return int(await self._redis.incrby(self._key(key), amount))

    # --- hashes ---------------------------------------------------------------------------------

    async def hset(self, key: str, mapping: Mapping[str, str]) -> None:
        if not mapping:
            return
        fields: dict[FieldT, EncodableT] = {name: value for name, value in mapping.items()}
        with self._errors.translated("hset"):
            await self._redis.hset(self._key(key), mapping=fields)

    async def hgetall(self, key: str) -> dict[str, str]:
        with self._errors.translated("hgetall"):
            found = await self._redis.hgetall(self._key(key))
        return {str(name): str(value) for name, value in found.items()}

    async def hdel(self, key: str, *fields: str) -> int:
        if not fields:
            return 0
        with self._errors.translated("hdel"):
            return int(await self._redis.hdel(self._key(key), *fields))

    async def keys(self, prefix: str) -> list[str]:
        pattern = _glob_escape(self._key(prefix)) + "*"
        found: set[str] = set()
        with self._errors.translated("keys"):
            async for key in self._redis.scan_iter(match=pattern, count=_SCAN_BATCH):
                found.add(str(key).removeprefix(self._prefix))
        return sorted(found)

    # --- pub/sub and lifecycle ------------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        with self._errors.translated("publish"):
            await self._redis.publish(self._key(channel), message)

    async def subscribe(self, *channels: str) -> Subscription:
        check_channels(channels)
        subscription = RedisSubscription(self._redis.pubsub(), self._prefix, self._errors, self._queue_size)
        await subscription.start(channels)
        self._subscriptions.add(subscription)
        return subscription

    async def ping(self) -> None:
        with self._errors.translated("ping"):
            await self._redis.ping()

    async def close(self) -> None:
        """Close open subscriptions too: their pump tasks would otherwise outlive the client."""
        for subscription in list(self._subscriptions):
            await subscription.close()
        self._subscriptions.clear()
        await self._redis.aclose()
