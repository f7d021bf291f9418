"""The ``cti`` command end to end on a temporary configuration (SQLite, a temporary media folder)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cti.cli import main

TOKEN = "t" * 32


def _config(tmp_path: Path, *, secret: str = "s3cret-for-tests") -> Path:
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    config = tmp_path / "cti.toml"
    config.write_text(f"""
[ami]
secret = "{secret}"
[asterisk]
sip_secret = "sip-secret-for-tests"
[database]
url = "sqlite+aiosqlite:///{tmp_path}/cti.sqlite3"
[paths]
media_dir = "{media}"
[security]
api_tokens = {{ "{TOKEN}" = "admin" }}
""")
    return config


def test_bad_config_exits_2_and_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[agi]\nport = -1\n")
    assert main(["-c", str(config), "check-config"]) == 2
    assert "agi.port" in capsys.readouterr().err


def test_check_config_lists_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(_config(tmp_path, secret="")), "check-config"]) == 1
    err = capsys.readouterr().err
    assert "ami.secret is empty" in err
    assert "prompts missing" in err


def test_demo_migrates_seeds_and_builds_prompts_then_config_is_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert main(["-c", str(config), "demo"]) == 0
    assert main(["-c", str(config), "demo"]) == 0  # idempotent
    with sqlite3.connect(tmp_path / "cti.sqlite3") as conn:
        numbers = sorted(row[0] for row in conn.execute("SELECT number FROM service_numbers"))
    assert numbers == ["5551000", "5552000"]
    assert (tmp_path / "media" / "prompts" / "fr" / "welcome.wav").stat().st_size > 1000
    capsys.readouterr()
    assert main(["-c", str(config), "check-config"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_asterisk_config_renders_manager_with_the_configured_secret(tmp_path: Path) -> None:
    out = tmp_path / "asterisk"
    assert main(["-c", str(_config(tmp_path)), "asterisk-config", "--out", str(out)]) == 0
    assert "s3cret-for-tests" in (out / "manager.conf").read_text()
    assert (out / "extensions.conf").is_file()
