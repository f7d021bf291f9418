"""Versions of the voice prompts: add one (upload or speech), activate one now or later, roll back.

The database says which version each prompt plays; the played file is a copy of that version's file. Each
change writes its rows and flushes them *before* touching a file, inside one transaction: the row lock
(PostgreSQL) or the write lock (SQLite) then orders concurrent changes of the same prompt, so the played file
always matches the version the database names, and a failed copy rolls the rows back.

The first change of a prompt that has no version yet records the file already in place (the espeak-ng
placeholder of ``cti prompts build``) as version 1, so it can be rolled back to. Scheduled activations are
applied by :mod:`.schedule` and also by every read (:meth:`PromptLibrary.apply_due`), so what is shown and
played never depends on when the background task last ran.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cti.db import Database
from cti.db.base import utcnow
from cti.prompts import PromptStore
from cti.supervision.voice_prompts.audio import Limits, convert, duration_or_zero, probe_format, speak
from cti.supervision.voice_prompts.errors import (
    PromptBusy,
    ScheduleRefused,
    TextRefused,
    VersionFileDamaged,
    VersionNotFound,
)
from cti.supervision.voice_prompts.files import incoming_dir, install, safe_filename, sha256_of, version_path
from cti.supervision.voice_prompts.models import ActivePrompt, PromptVersion

Clock = Callable[[], datetime]
Catalog = dict[str, dict[str, str]]
MAX_AHEAD = timedelta(days=366)
SYSTEM = "system"
BASELINE_NOTE = "in place before versioning"


@dataclass(frozen=True)
class Activation:
    """When a new version plays: ``now``, ``at`` an instant, or ``no`` (kept to be activated later)."""

    mode: Literal["now", "at", "no"] = "now"
    at: datetime | None = None


@dataclass(frozen=True)
class Origin:
    """Where a new version comes from, and who adds it."""

    source: Literal["upload", "tts"]
    author: str
    note: str = ""
    filename: str = ""


@dataclass
class PromptLibrary:
    db: Database
    store: PromptStore
    catalog: Catalog = field(default_factory=dict)
    clock: Clock = utcnow
    limits: Limits = field(default_factory=Limits)

    # --- new versions --------------------------------------------------------------------------------

    async def add_upload(self, language: str, name: str, upload: Path, origin: Origin,
                         activation: Activation) -> dict[str, Any]:
        """Checks the content, converts it, stores it as the next version."""
        self.store.path(language, name)  # a bad name or language is refused before any work
        self.check_activation(activation)
        with tempfile.TemporaryDirectory(dir=incoming_dir(self.store)) as work:
            converted = Path(work) / "prompt.wav"
            container = await asyncio.to_thread(probe_format, upload)
            duration = await asyncio.to_thread(convert, upload, container, converted, self.limits)
            return await self._add(language, name, converted, duration, origin, activation)

    async def add_speech(self, language: str, name: str, text: str, origin: Origin,
                         activation: Activation) -> dict[str, Any]:
        """espeak-ng speaks ``text`` (the catalogue's text when empty) as the next version."""
        self.store.path(language, name)
        self.check_activation(activation)
        text = text.strip() or self.catalog.get(name, {}).get(language, "")
        if not text:
            raise TextRefused(f"{name!r} is not in the catalogue: give the text to speak")
        with tempfile.TemporaryDirectory(dir=incoming_dir(self.store)) as work:
            spoken = Path(work) / "prompt.wav"
            duration = await asyncio.to_thread(speak, text, language, Path(work), spoken, self.limits)
            return await self._add(language, name, spoken, duration, origin, activation)

    async def _add(self, language: str, name: str, audio: Path, duration: float, origin: Origin,
                   activation: Activation) -> dict[str, Any]:
        await self.apply_due()
        size, digest = await asyncio.to_thread(_size_and_digest, audio)
        try:
            async with self.db.session() as session:
                await self._baseline(session, language, name)
                number = 1 + (await session.scalar(select(func.max(PromptVersion.version)).where(
                    PromptVersion.name == name, PromptVersion.language == language)) or 0)
                row = PromptVersion(name=name, language=language, version=number, source=origin.source,
                                    original_filename=safe_filename(origin.filename), duration_s=round(duration, 3),
                                    size_bytes=size, sha256=digest, created_by=origin.author[:120],
                                    created_at=self.clock(), note=origin.note[:500])
                session.add(row)
                await session.flush()  # holds (name, language, number) before its file is written
                await asyncio.to_thread(install, audio, version_path(self.store, language, name, number))
                await self._follow(session, row, activation, origin.author)
                return describe(row, await self._active_version(session, language, name))
        except IntegrityError:
            raise PromptBusy(f"another change of {name!r} ({language}) was saved at the same time; "
                             "try again") from None

    async def _follow(self, session: AsyncSession, row: PromptVersion, activation: Activation, author: str) -> None:
        if activation.mode == "now":
            await self._make_active(session, row, author)
        elif activation.mode == "at":
            row.activate_at, row.scheduled_by = activation.at, author[:120]

    # --- activation --------------------------------------------------------------------------------

    async def activate(self, language: str, name: str, version: int, author: str) -> dict[str, Any]:
        """Plays ``version`` from now on (a rollback when it is an older one); a pending schedule of it ends."""
        await self.apply_due()
        async with self.db.session() as session:
            row = await self._version(session, language, name, version)
            row.activate_at, row.scheduled_by = None, ""
            await self._make_active(session, row, author)
            return describe(row, row.version)

    async def schedule(self, language: str, name: str, version: int, at: datetime, author: str) -> dict[str, Any]:
        """``version`` becomes active at ``at`` (replacing any earlier schedule of that version)."""
        self.check_activation(Activation("at", at))
        await self.apply_due()
        async with self.db.session() as session:
            row = await self._version(session, language, name, version)
            row.activate_at, row.scheduled_by = at, author[:120]
            return describe(row, await self._active_version(session, language, name))

    async def cancel_schedule(self, language: str, name: str, version: int) -> dict[str, Any]:
        await self.apply_due()
        async with self.db.session() as session:
            row = await self._version(session, language, name, version)
            row.activate_at, row.scheduled_by = None, ""
            return describe(row, await self._active_version(session, language, name))

    async def apply_due(self) -> int:
        """Activates every scheduled version whose instant has come (per prompt, the latest due one wins);
        returns how many prompts changed."""
        now = self.clock()
        async with self.db.session() as session:
            due = list(await session.scalars(
                select(PromptVersion).where(PromptVersion.activate_at.is_not(None), PromptVersion.activate_at <= now)
                .order_by(PromptVersion.activate_at, PromptVersion.id)))
            winners = {(row.name, row.language): (row, f"{row.scheduled_by} (scheduled)") for row in due}
            for row in due:
                row.activate_at, row.scheduled_by = None, ""
            for row, author in winners.values():
                await self._make_active(session, row, author)
        return len(winners)

    def check_activation(self, activation: Activation) -> None:
        if activation.mode != "at":
            return
        at, now = activation.at, self.clock()
        if at is None or at.tzinfo is None:
            raise ScheduleRefused("the activation instant needs a date, a time and a UTC offset")
        if at <= now:
            raise ScheduleRefused(f"the activation instant {at.isoformat()} is not in the future")
        if at > now + MAX_AHEAD:
            raise ScheduleRefused("the activation instant is more than a year ahead")

    async def _make_active(self, session: AsyncSession, row: PromptVersion, author: str) -> None:
        """Names ``row`` active, flushes (taking the lock), then copies its file over the played one."""
        state = await session.get(ActivePrompt, (row.name, row.language))
        if state is None:
            state = ActivePrompt(name=row.name, language=row.language, version=row.version)
            session.add(state)
        state.version, state.activated_by, state.activated_at = row.version, author[:120], self.clock()
        await session.flush()
        source = version_path(self.store, row.language, row.name, row.version)
        await asyncio.to_thread(_check_version_file, source, row)
        await asyncio.to_thread(install, source, self.store.path(row.language, row.name))

    # --- reading -------------------------------------------------------------------------------------

    async def versions(self, language: str, name: str) -> dict[str, Any]:
        """Every version of one prompt in one language, newest first, with the active one."""
        self.store.path(language, name)
        await self.apply_due()
        async with self.db.session() as session:
            rows = list(await session.scalars(select(PromptVersion).where(
                PromptVersion.name == name, PromptVersion.language == language).order_by(PromptVersion.version.desc())))
            active = await self._active_version(session, language, name)
        described = [describe(row, active) for row in rows]
        in_place = None if rows else await asyncio.to_thread(_unversioned, self.store.path(language, name))
        if in_place is not None:
            described, active = [in_place], 1
        return {"name": name, "language": language, "active": active, "versions": described}

    async def version_file(self, language: str, name: str, version: int) -> Path:
        """A recorded version's file; version 1 of a prompt never changed here is the file in place."""
        self.store.path(language, name)
        async with self.db.session() as session:
            numbers = set(await session.scalars(select(PromptVersion.version).where(
                PromptVersion.name == name, PromptVersion.language == language)))
        if version in numbers:
            return version_path(self.store, language, name, version)
        if not numbers and version == 1:
            return self.store.path(language, name)
        raise VersionNotFound(f"{name!r} ({language}) has no version {version}")

    async def _version(self, session: AsyncSession, language: str, name: str, version: int) -> PromptVersion:
        self.store.path(language, name)
        await self._baseline(session, language, name)
        row = await session.scalar(select(PromptVersion).where(
            PromptVersion.name == name, PromptVersion.language == language, PromptVersion.version == version))
        if row is None:
            raise VersionNotFound(f"{name!r} ({language}) has no version {version}")
        return row

    async def _active_version(self, session: AsyncSession, language: str, name: str) -> int | None:
        state = await session.get(ActivePrompt, (name, language))
        return state.version if state else None

    async def _baseline(self, session: AsyncSession, language: str, name: str) -> None:
        """Records the file in place as version 1 when the prompt has no version yet."""
        existing = await session.scalar(select(func.count()).select_from(PromptVersion).where(
            PromptVersion.name == name, PromptVersion.language == language))
        played = self.store.path(language, name)
        facts = None if existing else await asyncio.to_thread(_unversioned, played)
        if facts is None:
            return
        session.add(PromptVersion(name=name, language=language, version=1, source="placeholder",
                                  original_filename=played.name, duration_s=facts["duration_s"],
                                  size_bytes=facts["size_bytes"], sha256=facts["sha256"], created_by=SYSTEM,
                                  created_at=self.clock(), note=BASELINE_NOTE))
        session.add(ActivePrompt(name=name, language=language, version=1, activated_by=SYSTEM,
                                 activated_at=self.clock()))
        await session.flush()
        await asyncio.to_thread(install, played, version_path(self.store, language, name, 1))



def describe(row: PromptVersion, active: int | None) -> dict[str, Any]:
    return {"version": row.version, "source": row.source, "original_filename": row.original_filename,
            "duration_s": row.duration_s, "size_bytes": row.size_bytes, "sha256": row.sha256,
            "created_by": row.created_by, "created_at": row.created_at.isoformat(), "note": row.note,
            "activate_at": row.activate_at.isoformat() if row.activate_at else None,
            "scheduled_by": row.scheduled_by, "active": row.version == active}


def _unversioned(played: Path) -> dict[str, Any] | None:
    """The file in place of a prompt never changed here, shown as version 1 (recorded at its first change);
    None when there is no file."""
    if not played.is_file():
        return None
    size, digest = _size_and_digest(played)
    return {"version": 1, "source": "placeholder", "original_filename": played.name,
            "duration_s": duration_or_zero(played), "size_bytes": size, "sha256": digest, "created_by": SYSTEM,
            "created_at": None, "note": BASELINE_NOTE, "activate_at": None, "scheduled_by": "", "active": True}


def _size_and_digest(path: Path) -> tuple[int, str]:
    return path.stat().st_size, sha256_of(path)


def _check_version_file(path: Path, row: PromptVersion) -> None:
    """A version's file must still be the one recorded: never play something else under its number."""
    if not path.is_file() or sha256_of(path) != row.sha256:
        raise VersionFileDamaged(f"the file of {row.name!r} ({row.language}) version {row.version} is missing "
                              "or was changed on disk")
