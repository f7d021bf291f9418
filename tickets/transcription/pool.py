"""``VoskTranscriber``: the ``Transcriber`` the voicemail pipeline awaits, backed by worker processes.

Why processes: decoding is seconds of CPU per message in native code. In worker processes a native
crash or an out-of-memory kill takes down one worker, not the call server; the server process never
loads libvosk or a model; and decoding and ffmpeg both run there, so the server only sends a path and
gets a small dict back. The cost is one copy of each model per worker (~0.5 GB for the Korean test
model): size ``transcription.workers`` by memory as well as cores.

Why ``forkserver``: forking the server itself would copy its event loop, listening sockets (a worker
would keep the AGI port bound after a restart), other threads' held locks and all its memory into
every worker. ``spawn`` and ``forkserver`` both start from a fresh interpreter; forkserver forks each
worker from a small single-threaded server process, a little cheaper than ``spawn`` when the pool is
recreated after a crash (about 90 vs 130 ms to a first result here, both dwarfed by the ~2 s model
load), and it is Python 3.14's default on Linux.

The event loop never blocks: creating the pool and submitting (which may start a worker process) run
in a thread, results arrive through ``asyncio.wrap_future``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cti.settings import TranscriptionSettings
from tickets.transcription import engine
from tickets.transcription.errors import TranscriptionError, WorkerCrashed
from tickets.transcription.models import require_model
from tickets.types import Transcriber, Transcript, Word

logger = logging.getLogger(__name__)

MP_START_METHOD = "forkserver"
WARM_UP_WAIT_S = 600.0  # a warm-up task waits this long for busy workers to finish their current job


@dataclass(frozen=True)
class WorkerWarmUp:
    pid: int
    load_s: float  # time this worker spent loading models in this warm-up
    loaded: int  # models it had to load (0: all were already in its cache)


@dataclass(frozen=True)
class WarmUp:
    seconds: float  # wall time until every worker had every model loaded
    workers: tuple[WorkerWarmUp, ...]


class VoskTranscriber:
    """Transcribes recordings with Vosk in ``settings.workers`` processes; recreates the pool after a crash."""

    def __init__(self, settings: TranscriptionSettings) -> None:
        self._settings = settings
        self._executor: ProcessPoolExecutor | None = None
        self._guard = threading.Lock()  # executor creation/replacement happens in worker threads
        self._closed = False

    async def transcribe(self, path: Path, language: str) -> Transcript:
        return await self._transcribe(path, language, None)

    async def transcribe_with_grammar(self, path: Path, language: str, phrases: Sequence[str]) -> Transcript:
        """Recognise only ``phrases`` (plus ``"[unk]"`` if listed and the model knows it): menus, tests."""
        return await self._transcribe(path, language, list(phrases))

    async def warm_up(self, languages: Iterable[str]) -> WarmUp:
        """Start every worker and load the models there, so the first voicemail does not pay for it."""
        model_dirs = await asyncio.to_thread(self._model_dirs, list(languages))
        started = time.perf_counter()
        tasks = [self._call(engine.warm, model_dirs, WARM_UP_WAIT_S) for _ in range(self._settings.workers)]
        reports = await asyncio.gather(*tasks)
        workers = tuple(WorkerWarmUp(report["pid"], report["load_s"], report["loaded"]) for report in reports)
        return WarmUp(time.perf_counter() - started, workers)

    def _model_dirs(self, languages: list[str]) -> list[str]:
        return [str(require_model(self._settings, language)) for language in languages]

    def close(self) -> None:
        """Stop accepting jobs and let the workers exit; does not wait (safe on the event loop)."""
        executor = self._stop_accepting()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Like ``close`` but waits, in a thread, until the running jobs end and the workers have exited."""
        executor = self._stop_accepting()
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def _stop_accepting(self) -> ProcessPoolExecutor | None:
        with self._guard:
            self._closed = True
            executor, self._executor = self._executor, None
        return executor

    async def _transcribe(self, path: Path, language: str, grammar: list[str] | None) -> Transcript:
        job = await asyncio.to_thread(self._job, path, language, grammar)  # stat() calls stay off the loop
        return transcript_from_result(await self._call(engine.transcribe_file, *job))

    def _job(self, path: Path, language: str, grammar: list[str] | None) -> tuple[Any, ...]:
        """Arguments for ``engine.transcribe_file``; ModelMissing here, before any worker is involved.

        The path is made absolute: workers descend from the forkserver, whose working directory is the
        server's at the time the forkserver started.
        """
        model_dir = require_model(self._settings, language)
        settings = self._settings
        return (str(model_dir), str(path.absolute()), language, settings.low_confidence, settings.max_audio_s, grammar)

    async def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` in a worker; worker deaths become ``WorkerCrashed``."""
        executor, future = await asyncio.to_thread(self._submit, function, *args)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._discard(executor)
            logger.warning("transcription worker died (%s); the pool will be recreated", exc)
            raise WorkerCrashed(f"transcription worker died during the job: {exc}") from exc
        except TranscriptionError:
            raise
        except Exception as exc:  # a bug or a native error in the worker: still a failed transcription
            raise TranscriptionError(f"transcription failed: {exc!r}") from exc

    def _submit(self, function: Callable[..., Any], *args: Any) -> tuple[ProcessPoolExecutor, Future[Any]]:
        """Blocking (may start a worker process): always called in a thread."""
        executor = self._current_executor()
        try:
            return executor, executor.submit(function, *args)
        except BrokenProcessPool:  # a worker died while idle: this job never ran, so a new pool is safe
            self._discard(executor)
            executor = self._current_executor()
            return executor, executor.submit(function, *args)
        except RuntimeError as exc:  # closed meanwhile, or multiprocessing refusing to start a worker
            raise TranscriptionError(f"cannot start the transcription job: {exc}") from exc

    def _current_executor(self) -> ProcessPoolExecutor:
        with self._guard:
            if self._closed:
                raise TranscriptionError("transcriber is closed")
            if self._executor is None:
                self._executor = self._new_executor()
            return self._executor

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context(MP_START_METHOD)
        barrier = context.Barrier(self._settings.workers)  # see engine.warm
        return ProcessPoolExecutor(
            max_workers=self._settings.workers, mp_context=context,
            initializer=engine.init_worker, initargs=(barrier,),
        )  # fmt: skip

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """Forget a broken pool (once, however many of its jobs report the crash); the next job makes a new one."""
        with self._guard:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)


def transcript_from_result(result: dict[str, Any]) -> Transcript:
    """The worker's plain dict -> the shared ``Transcript`` type."""
    words = tuple(Word(**word) for word in result["words"])
    return Transcript(text=result["text"], words=words, language=result["language"], duration_s=result["duration_s"])


if TYPE_CHECKING:

    def _implements_the_protocol(settings: TranscriptionSettings) -> Transcriber:
        return VoskTranscriber(settings)  # mypy checks VoskTranscriber against tickets.types.Transcriber
