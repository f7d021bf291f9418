"""``cti acd import|export`` in-process on a temporary SQLite database.

main() runs its own event loop (asyncio.run), so these tests are plain functions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cti.acd.config import dump_document, parse_document
from cti.cli import main
from cti.resources import resource_path

DEMO = resource_path("demo/acd.yaml")


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "cti.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cti.sqlite3"\n')
    assert main(["-c", str(path), "db", "upgrade"]) == 0
    capsys.readouterr()
    return path


def cti(config: Path, *args: str) -> int:
    return main(["-c", str(config), "acd", *args])


def test_import_then_export(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cti(config, "import", str(DEMO)) == 0
    assert capsys.readouterr().out == f"{DEMO}: imported 3 agents, 2 queues\n"
    assert cti(config, "export") == 0
    exported = capsys.readouterr().out
    expected = dump_document(parse_document(yaml.safe_load(DEMO.read_text(encoding="utf-8"))))
    assert yaml.safe_load(exported) == {"agents": expected["agents"], "queues": expected["queues"][::-1]}
    target = tmp_path / "acd.yaml"
    assert cti(config, "export", str(target)) == 0
    assert capsys.readouterr().out == f"{target}: exported\n"
    assert target.read_text(encoding="utf-8") == exported
    assert cti(config, "import", str(target)) == 0  # an export imports back unchanged
    capsys.readouterr()
    assert cti(config, "export") == 0
    assert capsys.readouterr().out == exported


def test_a_refused_file_exits_1_with_its_reasons_and_changes_nothing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cti(config, "import", str(DEMO)) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "agents": [{"id": "eve", "name": "Eve", "endpoint": "PJSIP/eve,60"}],
                "queues": [{"name": "sales", "overflow": "queue:support"}],
            }
        )
    )
    assert cti(config, "import", str(bad)) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}: refused",
        "  - agents.0.endpoint: 'PJSIP/eve,60' is not a dial target (',' not allowed): write PJSIP/<name>, "
        "Local/<exten>@<context> or a bare endpoint name",
        "  - queue 'sales': overflow: no queue 'support'",
    ]
    assert cti(config, "export") == 0
    assert [agent["id"] for agent in yaml.safe_load(capsys.readouterr().out)["agents"]] == ["alice", "bob", "chloe"]


def test_a_missing_file_is_reported(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cti(config, "import", str(tmp_path / "none.yaml")) == 1
    assert capsys.readouterr().err == f"{tmp_path / 'none.yaml'}: cannot read it (No such file or directory)\n"
    assert cti(config, "export", str(tmp_path / "no" / "such" / "dir.yaml")) == 1
    assert "cannot write it (No such file or directory)" in capsys.readouterr().err
