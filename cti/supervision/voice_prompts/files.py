"""Where versions live, and replacing the file Asterisk plays without ever exposing half a file.

Asterisk opens the prompt's path at each playback. Writing that path in place would let a call starting
during the copy play a truncated prompt, so the new content is written to a temporary file in the *same*
folder (``os.replace`` is atomic only within one file system), flushed to disk, then renamed over the target:
a reader sees the old file or the new one, whole. The folder is synced too so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from pathlib import Path

from cti.prompts import PromptStore

VERSIONS_DIR = ".versions"
INCOMING_DIR = ".incoming"
CHUNK = 1024 * 1024


def versions_root(store: PromptStore) -> Path:
    """Beside the language folders; the leading dot keeps it out of every ``<lang>/*.wav`` listing."""
    return store.root / VERSIONS_DIR


def version_path(store: PromptStore, language: str, name: str, version: int) -> Path:
    store.path(language, name)  # checks the name and the language: nothing else reaches the path
    return versions_root(store) / language / name / f"{int(version)}.wav"


def incoming_dir(store: PromptStore) -> Path:
    """Uploads and conversions are written here: the same file system as the versions, so moves are renames."""
    folder = versions_root(store) / INCOMING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def install(source: Path, target: Path) -> None:
    """Copies ``source`` over ``target`` atomically (temporary file in the target's folder, fsync, rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        with source.open("rb") as reader, temporary.open("wb") as writer:
            shutil.copyfileobj(reader, writer, CHUNK)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open or sync a folder; the rename is done
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        for block in iter(lambda: reader.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_filename(filename: str | None) -> str:
    """The uploaded file's name as shown in the versions list: its last path part, printable, 255 at most.
    It is only ever displayed, never used to build a path."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(char for char in base if char.isprintable())[:255]
