from __future__ import annotations

from pathlib import Path

import pytest

from cti.settings import SettingsError, load_settings


def test_defaults_load_without_file_or_environment() -> None:
    settings = load_settings(environ={})
    assert settings.ami.port == 5038
    assert settings.database.url.startswith("sqlite+aiosqlite://")
    assert settings.state.backend == "memory"


def test_file_then_environment_precedence(tmp_path: Path) -> None:
    config = tmp_path / "cti.toml"
    config.write_text('[ami]\nport = 5039\nsecret = "from-file"\n[agi]\nport = 4600\n')
    settings = load_settings(config, environ={"CTI_AMI__SECRET": "from-env", "CTI_HTTP__PORT": "9000"})
    assert settings.ami.port == 5039
    assert settings.ami.secret.get_secret_value() == "from-env"
    assert settings.agi.port == 4600
    assert settings.http.port == 9000


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[state]\nbackend = "redis"\n')
    assert load_settings(environ={"CTI_CONFIG": str(config)}).state.backend == "redis"


def test_bad_value_names_the_key_and_its_environment_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"CTI_AMI__PORT": "seventy"})
    assert "ami.port" in str(caught.value)
    assert "CTI_AMI__PORT" in str(caught.value)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[ami]\nprot = 1\n")
    with pytest.raises(SettingsError, match=r"ami\.prot"):
        load_settings(config, environ={})


def test_database_url_needs_an_async_driver() -> None:
    with pytest.raises(SettingsError, match=r"database\.url"):
        load_settings(environ={"CTI_DATABASE__URL": "postgresql://x/y"})


def test_token_table_from_environment_and_short_tokens_refused() -> None:
    good = load_settings(environ={"CTI_SECURITY__API_TOKENS": '{ "' + "a" * 32 + '" = "admin" }'})
    assert good.security.api_tokens == {"a" * 32: "admin"}
    with pytest.raises(SettingsError, match="at least 24"):
        load_settings(environ={"CTI_SECURITY__API_TOKENS": '{ short = "admin" }'})


def test_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})
    broken = tmp_path / "b.toml"
    broken.write_text("[ami\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken, environ={})


def test_secret_is_not_printed() -> None:
    settings = load_settings(environ={"CTI_AMI__SECRET": "hunter2-hunter2"})
    assert "hunter2" not in repr(settings)
