"""The prompts list: every catalogue and custom prompt per language, FR/EN completeness, and where each prompt
is used (the demo numbers' stored flows, the default flow, the scripts' built-in prompts)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cti.db import Database
from cti.db.models import ServiceNumber
from cti.prompts import load_catalog
from cti.resources import resource_path
from cti.supervision.voice_prompts.library import Activation, Origin
from cti.supervision.voice_prompts.overview import overview
from cti.supervision.voice_prompts.usage import BUILT_IN, prompt_usage
from tests.support.ivr import demo_ivr
from tests.support.prompt_audio import prompt_library, tone

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "cti" / "scripts", ROOT / "cti" / "ivr", ROOT / "tickets" / "voicemail"]
# a prompt name given to playable() / _play(), or a *_PROMPT constant
PLAYED = re.compile(r'(?:playable\([^,()]+,\s*|_play\(|_PROMPT\s*=\s*)"([a-z0-9-]+)"')


def by_name(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {prompt["name"]: prompt for prompt in listing["prompts"]}


async def test_every_catalogue_prompt_is_listed_with_what_plays_in_each_language(
    database: Database, tmp_path: Path
) -> None:
    library = prompt_library(database, tmp_path / "prompts")
    await library.add_upload("en", "welcome", tone(tmp_path / "t.wav"), Origin("upload", "sam"), Activation())
    prompts = by_name(await overview(library))
    welcome = prompts["welcome"]
    assert (welcome["catalog"], welcome["missing"]) == (True, ["fr"])
    assert welcome["texts"]["fr"] == "Bienvenue au support technique."
    english = welcome["languages"]["en"]
    assert (english["present"], english["version"], english["source"], english["versions"]) == (True, 2, "upload", 2)
    assert 0.9 < english["duration_s"] < 1.1
    assert welcome["languages"]["fr"] == {"present": False, "version": None, "source": None, "duration_s": None,
                                          "size_bytes": None, "versions": 0, "scheduled": []}
    goodbye = prompts["goodbye"]["languages"]["en"]
    assert (goodbye["present"], goodbye["version"]) == (False, None)


async def test_completeness_names_each_prompt_missing_a_language(database: Database, tmp_path: Path) -> None:
    library = prompt_library(database, tmp_path / "prompts")
    report = (await overview(library))["completeness"]
    assert report["languages"]["en"]["present"] == 1 and report["languages"]["fr"]["present"] == 0
    missing = {entry["name"]: entry["languages"] for entry in report["missing"]}
    assert missing["welcome"] == ["fr"] and missing["goodbye"] == ["en", "fr"]
    assert report["complete"] is False


async def test_a_prompt_present_in_both_languages_is_complete(database: Database, tmp_path: Path) -> None:
    library = prompt_library(database, tmp_path / "prompts")
    await library.add_speech("fr", "welcome", "", Origin("tts", "sam"), Activation())
    listing = await overview(library)
    assert by_name(listing)["welcome"]["missing"] == []
    assert "welcome" not in [entry["name"] for entry in listing["completeness"]["missing"]]
    assert listing["completeness"]["languages"]["fr"]["present"] == 1


async def test_a_set_with_every_prompt_in_both_languages_is_complete(database: Database, tmp_path: Path) -> None:
    library = prompt_library(database, tmp_path / "prompts")
    (library.store.root / "fr").mkdir()
    for language, name in [("en", "goodbye"), ("fr", "goodbye"), ("fr", "welcome"),
                           *((lang, built_in) for built_in in BUILT_IN for lang in ("en", "fr"))]:
        library.store.path(language, name).write_bytes(library.store.path("en", "welcome").read_bytes())
    report = (await overview(library))["completeness"]
    assert (report["complete"], report["missing"]) == (True, [])
    total = len(set(BUILT_IN) | {"welcome", "goodbye"})
    assert report["languages"]["fr"] == {"present": total, "total": total}


async def test_a_custom_prompt_is_listed_and_its_missing_language_reported(database: Database, tmp_path: Path) -> None:
    library = prompt_library(database, tmp_path / "prompts")
    await library.add_speech("fr", "promo-noel", "Joyeux Noël", Origin("tts", "sam"), Activation())
    listing = await overview(library)
    promo = by_name(listing)["promo-noel"]
    assert (promo["catalog"], promo["missing"], promo["used_by"]) == (False, ["en"], [])
    assert {"name": "promo-noel", "languages": ["en"], "used": False} in listing["completeness"]["missing"]


async def test_a_file_removed_by_hand_shows_as_missing(database: Database, tmp_path: Path) -> None:
    library = prompt_library(database, tmp_path / "prompts")
    library.store.path("en", "welcome").unlink()
    assert by_name(await overview(library))["welcome"]["missing"] == ["en", "fr"]


async def test_a_scheduled_version_is_shown_with_its_instant(database: Database, tmp_path: Path) -> None:
    library = prompt_library(database, tmp_path / "prompts")
    at = library.clock().replace(hour=20)
    await library.add_upload("en", "welcome", tone(tmp_path / "t.wav"), Origin("upload", "sam"), Activation("at", at))
    english = by_name(await overview(library))["welcome"]["languages"]["en"]
    assert english["version"] == 1
    assert english["scheduled"] == [{"version": 2, "at": at.isoformat(), "by": "sam"}]


async def test_usage_comes_from_the_stored_flows_and_the_scripts(database: Database) -> None:
    await demo_ivr(database)
    usage = await prompt_usage(database)
    welcome = [(u["service"], u["node"]) for u in usage["welcome"]]
    assert welcome == [("5551000", "welcome"), ("5552000", "welcome")]
    assert ("5551000", "main") in [(u["service"], u["node"]) for u in usage["invalid-input"]]  # a menu's default
    assert {"kind": "builtin", "where": "queue"} in usage["queue-hold"]
    assert [u["node"] for u in usage["next-opening"] if u["kind"] == "flow" and u["service"] == "5551000"] == [
        "closed", "holiday", "exceptional"]
    assert "welcome-vip" in usage and "main-menu" in usage


async def test_a_number_without_a_flow_uses_the_default_flows_prompts(database: Database) -> None:
    async with database.session() as session:
        session.add(ServiceNumber(number="5559000", name="New line", language="en"))
    usage = await prompt_usage(database)
    assert {"kind": "flow", "service": "5559000", "service_name": "New line", "default_flow": True,
            "node": "welcome"} in usage["welcome"]


async def test_the_overview_lists_flow_prompts_and_where_they_are_used(database: Database, tmp_path: Path) -> None:
    await demo_ivr(database)
    library = prompt_library(database, tmp_path / "prompts")
    library.catalog = load_catalog()
    prompts = by_name(await overview(library))
    assert set(load_catalog()) <= set(prompts)
    assert [u["service"] for u in prompts["main-menu"]["used_by"]] == ["5551000", "5552000"]
    assert prompts["vm-intro"]["used_by"] == [{"kind": "builtin", "where": "voicemail"}]


def test_every_prompt_the_scripts_play_is_in_the_built_in_list() -> None:
    played = {name for folder in SCRIPTS for path in folder.rglob("*.py")
              for name in PLAYED.findall(path.read_text(encoding="utf-8"))}
    assert {"queue-hold", "vm-intro", "technical-problem", "next-opening"} <= played  # the pattern finds them
    assert played - set(BUILT_IN) == set()


def test_every_built_in_prompt_is_in_the_catalogue() -> None:
    assert set(BUILT_IN) - set(load_catalog(resource_path("prompts/catalog.toml"))) == set()
