"""``cti ivr import|export|simulate`` in-process on a temporary SQLite database.

main() runs its own event loop (asyncio.run), so these tests are plain functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cti.cli import main
from cti.demo import demo_documents
from cti.ivr.flow import dump_flow, parse_flow
from cti.ivr.schedule_parse import dump_opening_hours, parse_opening_hours

DEMO = next(path for path in demo_documents() if path.stem == "5551000")


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A migrated SQLite database and an empty media folder (the catalog's prompts only)."""
    path = tmp_path / "cti.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cti.sqlite3"\n'
                    f'[paths]\nmedia_dir = "{tmp_path / "media"}"\n')
    assert main(["-c", str(path), "db", "upgrade"]) == 0
    capsys.readouterr()
    return path


def cti(config: Path, *args: str) -> int:
    return main(["-c", str(config), "ivr", *args])


def imported(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cti(config, "import", str(DEMO)) == 0
    assert capsys.readouterr().out == f"{DEMO}: imported 5551000\n"


def test_import_then_export(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(config, capsys)
    assert cti(config, "export", "5551000") == 0
    exported = yaml.safe_load(capsys.readouterr().out)
    source: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    assert exported == {"number": "5551000", "name": "Help desk (English)", "language": "en", "enabled": True,
                        "hours": dump_opening_hours(parse_opening_hours(source["hours"])),
                        "flow": dump_flow(parse_flow(source["flow"]))}


def test_an_export_imports_back_to_the_same_document(config: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    imported(config, capsys)
    assert cti(config, "export", "5551000") == 0
    first = capsys.readouterr().out
    copy = tmp_path / "copy.yaml"
    copy.write_text(first.replace('Help desk (English)', 'Help desk (copy)'))
    assert cti(config, "import", str(copy)) == 0
    capsys.readouterr()
    assert cti(config, "export", "5551000") == 0
    assert capsys.readouterr().out == first.replace('Help desk (English)', 'Help desk (copy)')


def test_a_refused_file_exits_1_with_its_reasons(config: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"number": "5559000", "hours": {"timezone": "Mars/Olympus", "weekly": {}},
                                   "flow": {"start": "a", "nodes": {"a": {"type": "play", "next": "b"}}}}))
    assert cti(config, "import", str(bad), str(DEMO)) == 1  # the good file is still imported
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"{bad}: refused", '  - hours.timezone: unknown time zone "Mars/Olympus"',
                                         "  - flow.node 'a': next goes to 'b', which does not exist"]
    assert captured.out == f"{DEMO}: imported 5551000\n"
    assert cti(config, "export", "5559000") == 1
    assert capsys.readouterr().err == "no service number '5559000'\n"


def test_a_missing_file_is_reported_and_the_others_still_imported(config: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert cti(config, "import", str(missing), str(DEMO)) == 1
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == (f"{missing}: cannot read it (No such file or directory)\n",
                                            f"{DEMO}: imported 5551000\n")


def test_a_file_that_is_not_yaml_is_refused(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("number: [5559000\n")
    assert cti(config, "import", str(bad)) == 1
    assert capsys.readouterr().err.startswith(f"{bad}: refused\n  - document: not valid YAML (")


@pytest.mark.parametrize(("at", "keys", "outcome", "path_end"), [
    ("2026-11-23T20:00+01:00", "", {"kind": "voicemail", "reason": "closed"}, ["closed", "closed-message"]),
    ("2026-11-23T10:00+01:00", "1,9", {"kind": "voicemail", "reason": "request"}, ["main:9", "message"]),
    ("2026-11-23T10:00+01:00", "2,2", {"kind": "voicemail", "reason": "overflow"}, ["busy", "overflow-message"]),
])
def test_simulate(config: Path, capsys: pytest.CaptureFixture[str], at: str, keys: str, outcome: dict[str, str],
                  path_end: list[str]) -> None:
    imported(config, capsys)
    assert cti(config, "simulate", "5551000", "--at", at, "--keys", keys, "--caller", "0155555555") == 0
    result = json.loads(capsys.readouterr().out)
    assert {key: result["outcome"][key] for key in outcome} == outcome
    assert result["path"][-2:] == path_end


def test_simulate_says_the_next_opening(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(config, capsys)
    assert cti(config, "simulate", "5551000", "--at", "2026-11-23T20:00+01:00", "--keys", "") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"][-1] == {"action": "say_datetime", "prompt": "", "language": "en", "key": None,
                                   "when": "2026-11-24T08:30:00+01:00"}
    assert result["unused_keys"] == []


@pytest.mark.parametrize(("args", "code", "error"), [
    (["5551000", "--at", "2026-11-23T20:00"], 2, "--at needs a UTC offset (e.g. 2026-11-23T09:00+01:00)\n"),
    (["5551000", "--at", "tonight"], 2, "--at: 'tonight' is not an ISO 8601 instant\n"),
    (["5550000", "--at", "2026-11-23T20:00Z"], 1, "no enabled service number '5550000'\n"),
])
def test_simulate_refusals(config: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int,
                           error: str) -> None:
    imported(config, capsys)
    assert cti(config, "simulate", *args) == code
    assert capsys.readouterr().err == error
