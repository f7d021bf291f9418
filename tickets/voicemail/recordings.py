"""Registering voicemail recordings, and finding the ones a crash left unregistered.

A caller's message exists first as a WAV file Asterisk wrote. :func:`register_recording` turns it into a
``Recording`` row plus its pending ``TranscriptionJob`` in one transaction, so a registered message is
always on its way to a ticket. Whatever happens between the file and the row (server killed, database
down) is repaired by :func:`recover_orphans`: every WAV under ``recordings/YYYY/MM/DD/`` without a row
gets one. A small JSON *sidecar* written before recording starts (``<name>.json``) keeps who called, so
a recovered message still says whose it is.

Names are ours (``recordings/YYYY/MM/DD/<uniqueid>-<random>.wav``), never built from caller input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import time
import wave
from collections.abc import Generator
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.exc import IntegrityError

from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord
from tickets.models import Recording, TranscriptionJob
from tickets.voicemail.errors import InvalidRecordingPath

log = logging.getLogger(__name__)

RECORDINGS = "recordings"
REASONS = ("closed", "overflow", "request")
TELEPHONE_BYTES_PER_S = 16_000  # Asterisk's "wav": 8 kHz, mono, 16-bit
WAV_HEADER_BYTES = 44
FOLDER_MODE = 0o2775  # group-writable and setgid: Asterisk writes here as another user of our group
_UNSAFE = re.compile(r"[^0-9A-Za-z.]")
_DAY_PARTS = (4, 2, 2)  # YYYY / MM / DD
_NOT_SIDECAR = ("path", "duration_s")  # the file itself is the authority for these
SCAN_CHUNK = 500  # WAV names a recovery scan checks against the database at a time
# Which of a chunk's paths have a row. Built once, the paths passed when it runs: a statement built around a
# chunk's list keeps it in SQLAlchemy's reference cycles until the collector runs, and scan after scan those
# 500-string lists piled up (docs/RELIABILITY.md, "Soak").
_REGISTERED_AMONG = select(Recording.path).where(Recording.path.in_(bindparam("paths", expanding=True)))


@dataclass(frozen=True)
class RecordingInfo:
    """What we know about a message when it is registered; ``path`` is relative to the media folder."""

    path: str
    uniqueid: str = ""
    call_id: int | None = None
    caller_number: str = ""
    caller_name: str = ""
    called_number: str = ""
    language: str = "en"
    reason: str = "request"
    ivr_path: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover_orphans` repaired."""

    jobs_added: int = 0
    files_registered: int = 0


def new_recording_path(uniqueid: str, now: datetime | None = None) -> str:
    """A fresh relative path for one take; the random part keeps re-recordings and retries apart."""
    day = (now or utcnow()).strftime("%Y/%m/%d")
    safe = _UNSAFE.sub("_", uniqueid)[:40] or "call"
    return f"{RECORDINGS}/{day}/{safe}-{secrets.token_hex(4)}.wav"


def check_path(relative: str) -> str:
    """Refuse anything that could point outside ``<media>/recordings/`` (absolute, ``..``, backslashes)."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or "\\" in relative or pure.parts[:1] != (RECORDINGS,):
        raise InvalidRecordingPath(f"not a path under {RECORDINGS}/: {relative!r}")
    return relative


def wav_duration(path: Path) -> float:
    """Seconds of audio; a header Asterisk never finished (it crashed) is estimated from the file size."""
    try:
        with wave.open(str(path)) as audio:
            frames, rate = audio.getnframes(), audio.getframerate()
        size = path.stat().st_size
    except (OSError, EOFError, wave.Error):
        return 0.0
    if frames == 0 and size > WAV_HEADER_BYTES:
        return (size - WAV_HEADER_BYTES) / TELEPHONE_BYTES_PER_S
    return frames / rate if rate else 0.0


def sidecar_path(wav: Path) -> Path:
    return wav.with_suffix(".json")


def prepare_folder(media_dir: Path, relative: str) -> Path:
    """Create the day folder Asterisk will write into; returns the WAV's absolute path.

    Asterisk runs as another user sharing our group (docker-compose: gid 10001, setgid folders), so the
    folders we create must be group-writable whatever our umask: ``chmod 2775`` on each one we create.
    """
    target = media_dir / check_path(relative)
    missing = [folder for folder in target.parents if folder.is_relative_to(media_dir) and not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            folder.chmod(FOLDER_MODE)
    return target


def write_sidecar(media_dir: Path, info: RecordingInfo) -> None:
    """Written before Asterisk records, so a message recovered after a crash keeps its caller; best effort
    (a message without its sidecar is still recovered, only with less to say about the caller)."""
    try:
        sidecar_path(media_dir / check_path(info.path)).write_text(json.dumps(asdict(info)), encoding="utf-8")
    except OSError as exc:
        log.warning("voicemail sidecar for %s not written: %s", info.path, exc)


def read_sidecar(wav: Path) -> dict[str, Any]:
    """The sidecar's fields with the expected types; anything unreadable or unexpected is ignored."""
    try:
        raw = json.loads(sidecar_path(wav).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    kinds: dict[str, tuple[type, ...]] = {"call_id": (int, type(None))}
    wanted = {f.name: kinds.get(f.name, (str,)) for f in fields(RecordingInfo) if f.name not in _NOT_SIDECAR}
    return {k: v for k, v in raw.items() if k in wanted and isinstance(v, wanted[k]) and not isinstance(v, bool)}


def remove_files(wav: Path) -> None:
    """Delete a take and its sidecar (a discarded or too-short message)."""
    wav.unlink(missing_ok=True)
    sidecar_path(wav).unlink(missing_ok=True)


async def register_recording(db: Database, info: RecordingInfo, *, max_attempts: int = 5) -> int:
    """Insert the Recording and its pending job in ONE transaction; idempotent by path (returns the id)."""
    check_path(info.path)
    try:
        return await _insert(db, info, max_attempts)
    except IntegrityError:  # recovery (or another process) registered the same file a moment ago
        found = await _recording_id(db, info.path)
        if found is None:
            raise
        return found


async def _insert(db: Database, info: RecordingInfo, max_attempts: int) -> int:
    async with db.session() as session:
        existing = await session.scalar(select(Recording.id).where(Recording.path == info.path))
        if existing is not None:
            return existing
        values = _columns(info)
        if values["call_id"] is not None and await session.get(CallRecord, values["call_id"]) is None:
            values["call_id"] = None  # its call's row is gone (a database restored from a backup): keep the message
        recording = Recording(**values)
        session.add(recording)
        await session.flush()
        session.add(TranscriptionJob(recording_id=recording.id, max_attempts=max_attempts))
        return recording.id


def _columns(info: RecordingInfo) -> dict[str, Any]:
    """Row values, cut to the column sizes (caller names come from the network)."""
    reason = info.reason if info.reason in REASONS else "request"
    return {
        "path": info.path, "call_id": info.call_id, "uniqueid": info.uniqueid[:64],
        "caller_number": info.caller_number[:64], "caller_name": info.caller_name[:128],
        "called_number": info.called_number[:64], "language": info.language[:8] or "en", "reason": reason,
        "ivr_path": info.ivr_path, "duration_s": max(0.0, float(info.duration_s)),
    }


async def _recording_id(db: Database, path: str) -> int | None:
    async with db.session() as session:
        return await session.scalar(select(Recording.id).where(Recording.path == path))


async def recover_orphans(
    db: Database, media_dir: Path, *, min_age_s: float = 0.0, max_attempts: int = 5, recent_days: int | None = None
) -> Recovery:
    """Give every recording its job and every unregistered WAV its row; nothing a caller said is dropped.

    ``min_age_s`` leaves alone files still being written or reviewed by a live call (their mtime is
    recent); ``recent_days`` limits the file scan to the newest day folders (periodic scans).
    """
    jobs = await _add_missing_jobs(db, max_attempts)
    files = 0
    for day in await asyncio.to_thread(_day_folders, media_dir / RECORDINGS, recent_days):
        files += await _register_day(db, media_dir, day, time.time() - min_age_s, max_attempts)
    if jobs or files:
        log.warning("voicemail recovery: %d job(s) added, %d unregistered file(s) registered", jobs, files)
    return Recovery(jobs, files)


async def _add_missing_jobs(db: Database, max_attempts: int) -> int:
    has_job = exists().where(TranscriptionJob.recording_id == Recording.id)
    async with db.session() as session:
        ids = list(await session.scalars(select(Recording.id).where(Recording.ticket_id.is_(None), ~has_job)))
    added = 0
    for recording_id in ids:
        try:
            async with db.session() as session:
                session.add(TranscriptionJob(recording_id=recording_id, max_attempts=max_attempts))
            added += 1
        except IntegrityError:  # another runner added it first
            continue
    return added


def _day_folders(root: Path, recent_days: int | None) -> list[Path]:
    days: list[Path] = [root]
    for width in _DAY_PARTS:
        days = sorted(p for d in days if d.is_dir() for p in d.iterdir()
                      if p.is_dir() and len(p.name) == width and p.name.isdigit())
    return days[-recent_days:] if recent_days else days


async def _register_day(db: Database, media_dir: Path, day: Path, cutoff: float, max_attempts: int) -> int:
    """Register the day folder's WAVs that have no row, ``SCAN_CHUNK`` names at a time: the scan runs every few
    minutes, and its memory must not grow with the number of messages the day holds."""
    prefix = day.relative_to(media_dir).as_posix() + "/"
    registered = 0
    with contextlib.closing(_wav_name_chunks(day)) as chunks:  # the folder is closed even if the database fails
        while (names := await asyncio.to_thread(next, chunks, None)) is not None:
            async with db.session() as session:
                paths = _padded([prefix + name for name in names])
                known = set(await session.scalars(_REGISTERED_AMONG, {"paths": paths}))
            unknown = [name for name in names if prefix + name not in known]
            for info in await asyncio.to_thread(_orphans_in, day, prefix, unknown, cutoff):
                await register_recording(db, info, max_attempts=max_attempts)
                sidecar_path(media_dir / info.path).unlink(missing_ok=True)
                registered += 1
    await asyncio.to_thread(_drop_stale_sidecars, day, cutoff)
    return registered


def _padded(paths: list[str]) -> list[str]:
    """``paths`` (not empty) with its last one repeated up to ``SCAN_CHUNK``: every chunk then runs the same SQL
    text. An IN list of another length is another statement, which the driver prepares and keeps in its
    connection's cache (up to 128 of them, ~0.1 MiB each at 500 names): the day's last chunk has a new length at
    nearly every scan, and the soak saw the memory step up every 5 minutes (docs/RELIABILITY.md, "Soak")."""
    return paths + [paths[-1]] * (SCAN_CHUNK - len(paths))


def _wav_name_chunks(day: Path) -> Generator[list[str], None, None]:
    """The names of the folder's WAVs, ``SCAN_CHUNK`` at a time, read as the folder is listed (file I/O: each
    chunk is pulled from a thread)."""
    with os.scandir(day) as entries:
        chunk: list[str] = []
        for entry in entries:
            if entry.name.endswith(".wav"):
                chunk.append(entry.name)
                if len(chunk) == SCAN_CHUNK:
                    yield sorted(chunk)
                    chunk = []
        if chunk:
            yield sorted(chunk)


def _orphans_in(day: Path, prefix: str, names: list[str], cutoff: float) -> list[RecordingInfo]:
    """Of these unregistered WAVs, the ones old enough not to belong to a live call (file I/O: a thread)."""
    return [_orphan_info(day / name, prefix + name) for name in names if not _newer_than(day / name, cutoff)]


def _orphan_info(wav: Path, relative: str) -> RecordingInfo:
    """From the sidecar when there is one, else the Asterisk uniqueid our file name starts with."""
    found = read_sidecar(wav)
    info = RecordingInfo(path=relative, uniqueid=wav.stem.rpartition("-")[0])
    return replace(info, **found, duration_s=wav_duration(wav))


def _newer_than(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime > cutoff
    except FileNotFoundError:  # deleted meanwhile (a too-short take)
        return True


def _drop_stale_sidecars(day: Path, cutoff: float) -> None:
    """A sidecar whose take never produced audio (caller left before the beep) is just litter. The folder is
    read as it is listed (``Path.glob`` would hold an entry for each of the day's files at once)."""
    with os.scandir(day) as entries:
        sidecars = [day / entry.name for entry in entries if entry.name.endswith(".json")]  # few: live takes
    for sidecar in sidecars:
        if not sidecar.with_suffix(".wav").exists() and not _newer_than(sidecar, cutoff):
            sidecar.unlink(missing_ok=True)
