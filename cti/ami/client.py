"""The AMI client: our own connection supervisor driving ``AmiProtocol``.

panoramisk's ``Manager`` is deliberately not used: it reconnects after a fixed 2 s, never checks that
a Ping is answered, and re-sends queued actions after a reconnect (a replayed Originate is a second
real call). Here one supervisor task connects, logs in, pings, and on any failure closes the link,
fails pending actions with ``AmiDisconnected`` and reconnects with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from panoramisk.message import Message

from cti.ami.backoff import Backoff
from cti.ami.callbacks import Callback, CallbackRunner, EventHandler, EventRouter
from cti.ami.errors import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiDisconnected,
    AmiError,
    AmiLoginFailed,
    AmiNotConnected,
)
from cti.ami.originate import OriginateTracker, originate_fields
from cti.ami.protocol import AmiProtocol, new_action_id
from cti.settings import AmiSettings

log = logging.getLogger(__name__)

CLOSE_WAIT = 1.0
"""Seconds to wait for the event loop to report a closed socket, so nothing is left half-open."""


@dataclass
class AmiStats:
    """Counters for the status route; ``last_error`` is a human sentence, never a secret."""

    connects: int = 0
    reconnects: int = 0
    timeouts: int = 0
    ping_failures: int = 0
    login_failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    connected_since: float | None = None
    ami_version: str | None = None  # the manager protocol version from the greeting, not Asterisk's

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AmiClient:
    """One logical AMI link that survives Asterisk restarts; actions are never replayed."""

    def __init__(self, settings: AmiSettings, *, backoff: Backoff | None = None) -> None:
        self._settings = settings
        self._backoff = backoff or Backoff(settings.reconnect_min, settings.reconnect_max)
        self._runner = CallbackRunner()
        self._events = EventRouter(self._runner)
        self._originates = OriginateTracker()
        self._on_connected: list[Callback] = []
        self._on_disconnected: list[Callback] = []
        self._protocol: AmiProtocol | None = None
        self._up = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.stats = AmiStats()

    # -- life cycle ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a logged-in session is open."""
        return self._protocol is not None and not self._protocol.closed

    @property
    def pending_count(self) -> int:
        """Actions awaiting a reply on the current link (0 when down): proof that nothing leaks."""
        return len(self._protocol.responses) if self._protocol is not None else 0

    async def start(self) -> None:
        """Start the supervisor and return at once; Asterisk may come up later."""
        if self._supervisor is None:
            self._stopping = False
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="ami-supervisor"
            )

    async def wait_connected(self, timeout: float) -> None:
        """Wait for a logged-in session; AmiNotConnected (with the last error) after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            raise AmiNotConnected(
                f"AMI {self._address} not connected after {timeout}s (last error: {self.stats.last_error})"
            ) from None

    async def stop(self) -> None:
        """Close the link and stop reconnecting; on_disconnected is not called for a deliberate stop."""
        self._stopping = True
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._runner.aclose()
        self._originates.close()

    # -- subscriptions ------------------------------------------------------------------------------

    def on_event(self, pattern: str, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler(event)`` for events whose name matches ``pattern`` (fnmatch, any case).

        Sync or async; exceptions are logged and never reach the link. Returns an unsubscribe function.
        """
        return self._events.add(pattern, handler)

    def on_connected(self, callback: Callback) -> None:
        """Called with no argument after every successful (re)login: resync state there."""
        self._on_connected.append(callback)

    def on_disconnected(self, callback: Callback) -> None:
        """Called with no argument when a logged-in session drops (pending actions already failed)."""
        self._on_disconnected.append(callback)

    # -- actions ------------------------------------------------------------------------------------

    async def send_action(
        self,
        action: Mapping[str, object],
        timeout: float | None = None,
    ) -> Message:
        """Send one action and return its Response.

        Raises AmiNotConnected (down), AmiActionTimeout (no reply; forgotten), AmiDisconnected (link lost
        while pending; not replayed), AmiActionFailed (``Response: Error``), AmiBadAction (CR/LF in a value).
        """
        return await self._exchange(self._require_protocol(), action, self._timeout(timeout))

    async def send_list_action(
        self,
        action: Mapping[str, object],
        timeout: float | None = None,
    ) -> list[Message]:
        """Send an EventList action (CoreShowChannels, Status, QueueStatus...) and return its item events.

        The closing ``...Complete`` event is not included; errors as for ``send_action``.
        """
        protocol = self._require_protocol()
        result: list[Message] = await self._exchange(protocol, action, self._timeout(timeout), as_list=True)
        return result

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | str = 1,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        timeout_ms: int = 30_000,
    ) -> str:
        """Queue an Async Originate and return its ActionID once Asterisk says "queued".

        It is sent exactly once: after a lost link it fails with AmiDisconnected and is never replayed.
        The outcome arrives later; collect it with ``wait_originate_response(action_id, timeout)``.
        """
        fields = originate_fields(
            channel, context=context, exten=exten, priority=priority, application=application, data=data,
            caller_id=caller_id, variables=variables, timeout_ms=timeout_ms,
        )  # fmt: skip
        protocol = self._require_protocol()
        action_id = fields["ActionID"] = new_action_id()
        self._originates.expect(action_id, timeout_ms / 1000 + self._settings.action_timeout)
        try:
            await self._exchange(protocol, fields, self._settings.action_timeout)
        except BaseException:
            self._originates.discard(action_id)
            raise
        return action_id

    async def wait_originate_response(self, action_id: str, timeout: float) -> Message:
        """The OriginateResponse event of an ``originate``; check its ``Response`` (Success/Failure).

        Raises AmiActionTimeout, AmiDisconnected (link lost first), AmiUnknownAction (not tracked).
        """
        return await self._originates.wait(action_id, timeout)

    # -- supervisor ---------------------------------------------------------------------------------

    @property
    def _address(self) -> str:
        return f"{self._settings.host}:{self._settings.port}"

    def _timeout(self, timeout: float | None) -> float:
        return self._settings.action_timeout if timeout is None else timeout

    def _require_protocol(self) -> AmiProtocol:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise AmiNotConnected(
                f"AMI {self._address} is not connected (last error: {self.stats.last_error})"
            )
        return protocol

    async def _supervise(self) -> None:
        """Connect, live, and retry forever with backoff (reset after every successful login)."""
        while True:
            try:
                logged_in = await self._session()
            except Exception:  # a bug here must not end reconnection for good
                log.exception("AMI %s: unexpected supervisor error", self._address)
                logged_in = False
            if logged_in:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            self.stats.reconnects += 1
            log.info("AMI %s: reconnecting in %.2fs", self._address, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection's whole life; True if the login succeeded."""
        try:
            protocol = await self._open()
        except (OSError, TimeoutError, AmiError) as exc:
            self._note_error(exc)
            return False
        try:
            self._session_started(protocol)
            await self._keep_alive(protocol)
        finally:
            await self._session_ended(protocol)
        return True

    async def _open(self) -> AmiProtocol:
        """TCP connect, read the greeting, log in, and give Asterisk a moment to report FullyBooted."""
        loop, settings = asyncio.get_running_loop(), self._settings
        async with asyncio.timeout(settings.connect_timeout):
            _, protocol = await loop.create_connection(
                lambda: AmiProtocol(self._dispatch), settings.host, settings.port
            )
        try:
            async with asyncio.timeout(settings.connect_timeout):
                self.stats.ami_version = await protocol.greeting
            await self._login(protocol)
            boot_or_loss: set[asyncio.Future[Any]] = {protocol.booted, protocol.lost}
            await asyncio.wait(
                boot_or_loss, timeout=settings.connect_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            await self._discard(protocol)
            raise
        return protocol

    async def _login(self, protocol: AmiProtocol) -> None:
        settings = self._settings
        fields = {
            "Action": "Login",
            "Username": settings.username,
            "Secret": settings.secret.get_secret_value(),
            "Events": "on",
        }
        try:
            await self._exchange(protocol, fields, settings.action_timeout)
        except AmiActionFailed as exc:
            self.stats.login_failures += 1
            reason = exc.response.message or "refused"
            raise AmiLoginFailed(
                f"AMI login as {settings.username!r} on {self._address} refused: {reason}"
            ) from None

    def _session_started(self, protocol: AmiProtocol) -> None:
        self._protocol = protocol
        self.stats.connects += 1
        self.stats.connected_since = time.time()
        self._up.set()
        log.info("AMI %s: logged in (Asterisk Call Manager/%s)", self._address, protocol.version)
        for callback in list(self._on_connected):
            self._runner.run(callback)

    async def _keep_alive(self, protocol: AmiProtocol) -> None:
        """Ping every ``ping_interval``; an unanswered Ping means a dead link: close it and return."""
        while not protocol.lost.done():
            done, _ = await asyncio.wait({protocol.lost}, timeout=self._settings.ping_interval)
            if not done and not await self._ping(protocol):
                protocol.abort()
                return

    async def _ping(self, protocol: AmiProtocol) -> bool:
        timeout = self._settings.ping_timeout
        try:
            await self._exchange(protocol, {"Action": "Ping"}, timeout)
        except AmiActionTimeout:
            self.stats.ping_failures += 1
            self._note_error(AmiActionTimeout(f"no answer to Ping within {timeout}s; closing the link"))
            return False
        except AmiError:
            pass  # an error reply still proves liveness; a lost link is seen by _keep_alive
        return True

    async def _session_ended(self, protocol: AmiProtocol) -> None:
        """Runs on every end, including stop(): pending work is failed before anyone is told."""
        self._protocol = None
        self._up.clear()
        self.stats.connected_since = None
        await self._discard(protocol)
        self._originates.fail_pending(f"AMI link to {self._address} lost before the OriginateResponse")
        if self._stopping:
            log.info("AMI %s: closed (stop)", self._address)
            return
        reason = protocol.lost.result() if protocol.lost.done() else None
        self._note_error(AmiDisconnected(f"AMI link to {self._address} lost ({reason or 'closed by peer'})"))
        for callback in list(self._on_disconnected):
            self._runner.run(callback)

    async def _discard(self, protocol: AmiProtocol) -> None:
        """Abort the socket and wait (bounded) until the loop has really closed it."""
        protocol.abort()
        if not protocol.lost.done():
            await asyncio.wait({protocol.lost}, timeout=CLOSE_WAIT)

    async def _exchange(
        self, protocol: AmiProtocol, fields: Mapping[str, object], seconds: float, *, as_list: bool = False
    ) -> Any:
        """Send and await one reply; whatever happens, the action leaves the pending map."""
        action = protocol.submit(fields, as_list=as_list)
        try:
            async with asyncio.timeout(seconds):
                return await action.future
        except TimeoutError:
            self.stats.timeouts += 1
            name = action.get("Action", "?")
            raise AmiActionTimeout(f"AMI {name} ({action.id}) got no reply within {seconds}s") from None
        finally:
            protocol.forget(action.id)

    def _dispatch(self, event: Message) -> None:
        if str(event.event).lower() == "originateresponse":
            self._originates.resolve(event)
        self._events.dispatch(event)

    def _note_error(self, exc: BaseException) -> None:
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self.stats.last_error_at = time.time()
        log.warning("AMI %s: %s", self._address, self.stats.last_error)
