from __future__ import annotations

import wave
from pathlib import Path

import pytest

from cti.prompts import LANGUAGES, PromptError, PromptStore, build_placeholders, load_catalog


def test_catalog_has_both_languages_for_every_prompt() -> None:
    catalog = load_catalog()
    assert {"welcome", "goodbye", "technical-problem"} <= set(catalog)
    assert all(set(LANGUAGES) <= set(texts) for texts in catalog.values())


def test_catalog_missing_a_language_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text('[hello]\nen = "Hello"\n')
    with pytest.raises(PromptError, match="no text for fr"):
        load_catalog(bad)


@pytest.mark.parametrize("name", ["../etc/passwd", "Welcome", "a b", "", "x" * 80, "a/b"])
def test_names_that_could_escape_or_confuse_are_refused(name: str) -> None:
    with pytest.raises(PromptError):
        PromptStore(Path("/tmp")).path("en", name)


def test_playable_path_has_no_extension() -> None:
    assert PromptStore(Path("/m/prompts")).playable("fr", "welcome") == "/m/prompts/fr/welcome"


def test_placeholders_are_8khz_mono_16bit_and_not_rebuilt(tmp_path: Path) -> None:
    store = PromptStore(tmp_path)
    catalog = {"welcome": {"en": "Welcome", "fr": "Bienvenue"}}
    assert build_placeholders(store, catalog) == 2
    with wave.open(str(store.path("fr", "welcome"))) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() > 2000  # some speech, not an empty file
    assert build_placeholders(store, catalog) == 0
    assert build_placeholders(store, catalog, force=True) == 2
