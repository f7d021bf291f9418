"""Replacing the file Asterisk plays: always through a whole temporary file in the same folder and one
rename, so a call never plays half a prompt; and where versions live (never outside the prompts folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from cti.prompts import PromptError, PromptStore
from cti.supervision.voice_prompts.files import install, safe_filename, version_path


def test_install_renames_a_complete_copy_from_the_same_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target, source = tmp_path / "en" / "welcome.wav", tmp_path / "new.wav"
    target.parent.mkdir()
    target.write_bytes(b"old prompt")
    source.write_bytes(b"new prompt, " * 100_000)
    seen: list[tuple[Path, bytes, bytes]] = []
    real_replace = os.replace

    def watching_replace(src: Any, dst: Any) -> None:
        # at the rename, the played file is still the old one whole and the new one is complete
        seen.append((Path(src), Path(src).read_bytes(), Path(dst).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    install(source, target)
    [(temporary, new_content, old_content)] = seen
    assert temporary.parent == target.parent and temporary != target
    assert (new_content, old_content) == (source.read_bytes(), b"old prompt")
    assert target.read_bytes() == source.read_bytes()
    assert sorted(path.name for path in target.parent.iterdir()) == ["welcome.wav"]  # no temporary left


def test_a_failed_copy_leaves_the_played_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target, source = tmp_path / "welcome.wav", tmp_path / "new.wav"
    target.write_bytes(b"old prompt")
    source.write_bytes(b"new" * 10_000)

    def half_copy(reader: Any, writer: Any, length: int = 0) -> None:
        writer.write(reader.read(100))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", half_copy)
    with pytest.raises(OSError, match="No space left"):
        install(source, target)
    assert target.read_bytes() == b"old prompt"
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")] == []


def test_install_creates_the_language_folder(tmp_path: Path) -> None:
    source = tmp_path / "new.wav"
    source.write_bytes(b"x")
    install(source, tmp_path / "fr" / "welcome.wav")
    assert (tmp_path / "fr" / "welcome.wav").read_bytes() == b"x"


def test_versions_live_under_the_prompts_folder() -> None:
    store = PromptStore(Path("/media/prompts"))
    assert version_path(store, "fr", "welcome", 3) == Path("/media/prompts/.versions/fr/welcome/3.wav")


@pytest.mark.parametrize(("language", "name"), [
    ("en", "../../etc/passwd"), ("en", ".."), ("en", "a/b"), ("en", "Welcome"), ("en", "x" * 65), ("en", ""),
    ("de", "welcome"), ("../en", "welcome"), ("", "welcome"),
])
def test_a_name_or_language_that_could_escape_is_refused(language: str, name: str) -> None:
    with pytest.raises(PromptError):
        version_path(PromptStore(Path("/media/prompts")), language, name, 1)


@pytest.mark.parametrize(("given", "kept"), [
    ("C:\\Users\\sam\\accueil.mp3", "accueil.mp3"), ("../../etc/passwd", "passwd"), ("bell\x07.wav", "bell.wav"),
    (None, ""), ("a" * 300 + ".wav", "a" * 255),
])
def test_the_uploaded_name_is_kept_for_display_only(given: str | None, kept: str) -> None:
    assert safe_filename(given) == kept
