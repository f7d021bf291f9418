"""The prompts list of the page: every prompt (catalogue, custom, or named by a flow), per language, with
what plays now, its versions and schedules, where it is used, and which languages miss it.

"Present" means a file Asterisk can play is in place: that is what a caller hears, whatever the database
says, so a prompt whose file was removed by hand shows as missing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cti.prompts import LANGUAGES, NAME_PATTERN, PromptStore
from cti.supervision.voice_prompts.audio import duration_or_zero
from cti.supervision.voice_prompts.library import PromptLibrary
from cti.supervision.voice_prompts.models import ActivePrompt, PromptVersion
from cti.supervision.voice_prompts.usage import Usage, prompt_usage


@dataclass(frozen=True)
class InPlace:
    """A played file as found on disk."""

    size_bytes: int
    duration_s: float


@dataclass(frozen=True)
class Known:
    """What the database knows of the prompts: rows per (name, language) and the active versions."""

    rows: dict[tuple[str, str], list[PromptVersion]]
    active: dict[tuple[str, str], int]


async def overview(library: PromptLibrary) -> dict[str, Any]:
    await library.apply_due()
    known = await _known(library)
    usage = await prompt_usage(library.db)
    files = await asyncio.to_thread(files_in_place, library.store)
    names = sorted(set(library.catalog) | {name for name, _ in known.rows} | usage.keys()
                   | {name for by_name in files.values() for name in by_name})
    prompts = [_prompt(name, library, known, files, usage) for name in names]
    return {"languages": list(LANGUAGES), "prompts": prompts, "completeness": completeness(prompts)}


def completeness(prompts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per language, how many prompts are present; and each prompt missing a language, used ones first."""
    per_language = {lang: {"present": sum(1 for p in prompts if p["languages"][lang]["present"]),
                           "total": len(prompts)} for lang in LANGUAGES}
    missing = [{"name": p["name"], "languages": p["missing"], "used": bool(p["used_by"])}
               for p in prompts if p["missing"]]
    missing.sort(key=lambda entry: (not entry["used"], entry["name"]))
    return {"languages": per_language, "missing": missing, "complete": not missing}


def files_in_place(store: PromptStore) -> dict[str, dict[str, InPlace]]:
    """``{language: {name: InPlace}}`` for every well-named WAV in the language folders."""
    found: dict[str, dict[str, InPlace]] = {}
    for language in LANGUAGES:
        folder = store.root / language
        paths = sorted(folder.glob("*.wav")) if folder.is_dir() else []
        found[language] = {path.stem: InPlace(path.stat().st_size, duration_or_zero(path)) for path in paths
                           if NAME_PATTERN.fullmatch(path.stem) and path.is_file()}
    return found


async def _known(library: PromptLibrary) -> Known:
    async with library.db.session() as session:
        rows = list(await session.scalars(select(PromptVersion).order_by(PromptVersion.version)))
        states = list(await session.scalars(select(ActivePrompt)))
    grouped: dict[tuple[str, str], list[PromptVersion]] = defaultdict(list)
    for row in rows:
        grouped[(row.name, row.language)].append(row)
    return Known(dict(grouped), {(state.name, state.language): state.version for state in states})


def _prompt(name: str, library: PromptLibrary, known: Known, files: dict[str, dict[str, InPlace]],
            usage: Usage) -> dict[str, Any]:
    languages = {lang: _language(known, name, lang, files[lang].get(name)) for lang in LANGUAGES}
    return {"name": name, "catalog": name in library.catalog, "texts": library.catalog.get(name, {}),
            "languages": languages, "missing": [lang for lang in LANGUAGES if not languages[lang]["present"]],
            "used_by": usage.get(name, [])}


def _language(known: Known, name: str, language: str, in_place: InPlace | None) -> dict[str, Any]:
    rows = known.rows.get((name, language), [])
    active = known.active.get((name, language))
    current = next((row for row in rows if row.version == active), None)
    scheduled = [{"version": row.version, "at": row.activate_at.isoformat(), "by": row.scheduled_by}
                 for row in sorted(rows, key=lambda row: row.activate_at or row.created_at) if row.activate_at]
    version: int | None = None
    source: str | None = None
    duration: float | None = None
    if current is not None:
        version, source, duration = current.version, current.source, current.duration_s
    elif in_place is not None:  # never changed here: the file in place is what version 1 will be
        version, source, duration = (None if rows else 1), "placeholder", in_place.duration_s
    return {"present": in_place is not None, "version": version, "source": source, "duration_s": duration,
            "size_bytes": in_place.size_bytes if in_place else None,
            "versions": len(rows) or (1 if in_place else 0), "scheduled": scheduled}
