"""Voice prompts on disk: where a prompt lives, and building placeholder prompts with espeak-ng.

Layout: ``<media_dir>/prompts/<lang>/<name>.wav``. Asterisk plays a file by its path *without*
extension, and it sees the media folder at the same absolute path as we do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cti.errors import CtiError
from cti.resources import resource_path

LANGUAGES = ("en", "fr")
ESPEAK_VOICES = {"en": "en-us", "fr": "fr-fr"}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
CATALOG = "prompts/catalog.toml"


class PromptError(CtiError):
    code = "prompts.invalid"


@dataclass(frozen=True)
class PromptStore:
    """Answers "which file does Asterisk play for prompt X in language L"."""

    root: Path

    def path(self, language: str, name: str) -> Path:
        check_name(name)
        if language not in LANGUAGES:
            raise PromptError(f"unknown language {language!r}; expected one of {LANGUAGES}")
        return self.root / language / f"{name}.wav"

    def playable(self, language: str, name: str) -> str:
        """The argument for Playback/STREAM FILE: the absolute path without ``.wav``."""
        return str(self.path(language, name).with_suffix(""))

    def exists(self, language: str, name: str) -> bool:
        return self.path(language, name).is_file()


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise PromptError(f"invalid prompt name {name!r}: lowercase letters, digits and '-' only")
    return name


def load_catalog(path: Path | None = None) -> dict[str, dict[str, str]]:
    path = path or resource_path(CATALOG)
    with path.open("rb") as handle:
        catalog: dict[str, dict[str, str]] = tomllib.load(handle)
    for name, texts in catalog.items():
        check_name(name)
        missing = [lang for lang in LANGUAGES if not texts.get(lang)]
        if missing:
            raise PromptError(f"{path}: prompt {name!r} has no text for {', '.join(missing)}")
    return catalog


def build_placeholders(store: PromptStore, catalog: dict[str, dict[str, str]], force: bool = False) -> int:
    """Speak every missing prompt with espeak-ng; returns how many files were written."""
    written = 0
    for name, texts in catalog.items():
        for language in LANGUAGES:
            target = store.path(language, name)
            if target.exists() and not force:
                continue
            synthesize(texts[language], language, target)
            written += 1
    return written


def synthesize(text: str, language: str, target: Path) -> None:
    """espeak-ng, then sox to 8 kHz mono 16-bit; written beside the target and renamed (atomic)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptError(f"{tool} is not installed (apt-get install espeak-ng sox)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        raw, telephone = Path(work) / "raw.wav", Path(work) / "tel.wav"
        subprocess.run(["espeak-ng", "-v", ESPEAK_VOICES[language], "-s", "150", "-w", str(raw), text],
                       check=True, capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                        str(telephone)], check=True, capture_output=True)
        os.replace(telephone, target)
