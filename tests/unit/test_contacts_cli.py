"""``cti contacts import|export`` in-process on a temporary SQLite database: the demo file, dry runs,
refusals with every line, the size limit, and an export that imports back unchanged.

main() runs its own event loop (asyncio.run), so these tests are plain functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.cli import main
from cti.contacts import csv_import
from cti.resources import resource_path

DEMO = resource_path("demo/contacts.csv")


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "cti.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cti.sqlite3"\n')
    assert main(["-c", str(path), "db", "upgrade"]) == 0
    capsys.readouterr()
    return path


def cti(config: Path, *args: str) -> int:
    return main(["-c", str(config), "contacts", *args])


def demo_count() -> int:
    return len(DEMO.read_text(encoding="utf-8").splitlines()) - 1


def test_dry_run_then_import_then_export_round_trip(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    count = demo_count()
    assert cti(config, "import", "--dry-run", str(DEMO)) == 0
    assert capsys.readouterr().out == (f"{DEMO}: would be {count} created, 0 updated, 0 unchanged; companies: 5 "
                                       "created, 0 updated (dry run: nothing written)\n")
    assert cti(config, "export") == 0
    assert capsys.readouterr().out == "name,numbers,email,company,contract_level,vip,language\n"
    assert cti(config, "import", str(DEMO)) == 0
    assert capsys.readouterr().out == (f"{DEMO}: {count} created, 0 updated, 0 unchanged; "
                                       "companies: 5 created, 0 updated\n")
    target = tmp_path / "contacts.csv"
    assert cti(config, "export", str(target)) == 0
    assert capsys.readouterr().out == f"{target}: exported {count} contacts\n"
    exported = target.read_text(encoding="utf-8")
    assert "Claire Martin,+33612345678,claire.martin@dupont-sa.example,Dupont SA,gold,no,fr\n" in exported
    assert cti(config, "import", str(target)) == 0
    assert capsys.readouterr().out == (f"{target}: 0 created, 0 updated, {count} unchanged; "
                                       "companies: 0 created, 0 updated\n")
    assert cti(config, "export") == 0
    assert capsys.readouterr().out == exported


def test_a_refused_file_exits_1_with_every_line_and_imports_nothing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name;numbers;language\nClaire;06 12 34 56 78;fr\n;12;fr\nJean;0612345678;\n", encoding="utf-8")
    assert cti(config, "import", str(bad)) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}: refused, nothing imported",
        "  line 3: name: must not be empty; numbers: '12' is not a phone number (write it as +33612345678, or in the "
        "national format of FR)",
        "  line 4: number +33612345678 is also on line 2",
    ]
    assert cti(config, "export") == 0
    assert capsys.readouterr().out.count("\n") == 1


def test_a_missing_or_oversized_file_is_reported(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cti(config, "import", str(tmp_path / "none.csv")) == 1
    assert capsys.readouterr().err == f"{tmp_path / 'none.csv'}: cannot read it (No such file or directory)\n"
    monkeypatch.setattr(csv_import, "MAX_CSV_BYTES", 100)
    assert cti(config, "import", str(DEMO)) == 1
    assert capsys.readouterr().err == f"{DEMO}: the file is larger than 0.0001 MB: split it in several files\n"
    assert cti(config, "export", str(tmp_path / "no" / "such" / "dir.csv")) == 1
    assert "cannot write it (No such file or directory)" in capsys.readouterr().err
