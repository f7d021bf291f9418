"""API tokens may carry an expiry: ``token = "role"`` (no expiry, as before) or ``token = { role, expires }``.

An expired token is refused (401), said at start-up and by ``cti check-config``; a configuration error about a
token never prints the token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.checks import check_settings
from cti.http.app import expired_tokens, make_web_app
from cti.http.auth import TOKEN_EXPIRY_KEY
from cti.settings import ApiToken, SecuritySettings, SettingsError, load_settings

PLAIN = "p" * 32
FUTURE = "f" * 32
PAST = "x" * 32
Client = TestClient[web.Request, web.Application]
TABLE = (f'{{ "{PLAIN}" = "admin", "{FUTURE}" = {{ role = "supervisor", expires = "2999-01-01T00:00:00Z" }}, '
         f'"{PAST}" = {{ role = "admin", expires = 2020-01-01T00:00:00+01:00 }} }}')


async def _status() -> dict[str, Any]:
    return {"healthy": True}


def _security() -> SecuritySettings:
    return load_settings(environ={"CTI_SECURITY__API_TOKENS": TABLE}).security


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_web_app(_security(), _status))) as test_client:
        yield test_client


async def _status_of(client: Client, token: str) -> int:
    return (await client.get("/api/status", headers={"Authorization": f"Bearer {token}"})).status


def test_both_forms_are_read() -> None:
    security = _security()
    assert security.api_tokens[PLAIN] == "admin"  # the old form is kept as it was written
    assert security.api_tokens[FUTURE] == ApiToken(role="supervisor", expires=datetime(2999, 1, 1, tzinfo=UTC))
    assert security.token_roles() == {PLAIN: "admin", FUTURE: "supervisor", PAST: "admin"}
    assert set(security.token_expiry()) == {FUTURE, PAST}
    assert security.token_expiry()[PAST] == datetime(2019, 12, 31, 23, 0, tzinfo=UTC)


def test_the_table_form_reads_from_a_file(tmp_path: Path) -> None:
    config = tmp_path / "cti.toml"
    config.write_text(f'[security.api_tokens]\n"{FUTURE}" = {{ role = "agent", expires = 2999-06-01T08:00:00Z }}\n'
                      f'"{PLAIN}" = "supervisor"\n')
    security = load_settings(config, environ={}).security
    assert security.token_roles() == {FUTURE: "agent", PLAIN: "supervisor"}


@pytest.mark.parametrize(("spec", "error"), [
    ('{ role = "admin", expires = "2030-01-01T00:00:00" }', "timezone"),
    ('{ role = "root" }', "table.role"),
    ('{ role = "admin", expire = "2030-01-01T00:00:00Z" }', "table.expire"),
    ('"root"', ".role"),
    ("12", "valid dictionary"),
])
def test_bad_entries_are_refused_without_printing_the_token(spec: str, error: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"CTI_SECURITY__API_TOKENS": f'{{ "{PLAIN}" = {spec} }}'})
    message = str(caught.value)
    assert error in message and "security.api_tokens.pppp..." in message
    assert PLAIN not in message


async def test_an_expired_token_is_refused_and_the_others_work(client: Client) -> None:
    assert await _status_of(client, PLAIN) == 200
    assert await _status_of(client, FUTURE) == 200
    refused = await client.get("/api/status", headers={"Authorization": f"Bearer {PAST}"})
    assert refused.status == 401 and refused.headers["WWW-Authenticate"] == "Bearer"


async def test_a_token_expiring_while_the_server_runs_is_refused_from_then_on(client: Client) -> None:
    assert await _status_of(client, FUTURE) == 200
    expiry = client.app[TOKEN_EXPIRY_KEY]
    assert isinstance(expiry, dict)
    expiry[FUTURE] = datetime(2021, 1, 1, tzinfo=UTC).timestamp()  # as if the server had run until 2999
    assert await _status_of(client, FUTURE) == 401


def test_expired_tokens_are_logged_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cti.http.app"):
        make_web_app(_security(), _status)
    assert "API token xxxx... (admin) expired on 2020-01-01T00:00:00+01:00: it is refused" in caplog.text
    assert "ffff" not in caplog.text and PAST not in caplog.text


def test_expired_tokens_against_a_given_instant() -> None:
    security = _security()
    assert expired_tokens(security, datetime(2019, 1, 1, tzinfo=UTC).timestamp()) == []
    assert len(expired_tokens(security, datetime(3000, 1, 1, tzinfo=UTC).timestamp())) == 2


def test_check_config_lists_expired_tokens(tmp_path: Path) -> None:
    settings = load_settings(environ={"CTI_SECURITY__API_TOKENS": TABLE, "CTI_PATHS__MEDIA_DIR": str(tmp_path)})
    problems = [line for line in check_settings(settings) if "api_tokens" in line]
    assert problems == ["security.api_tokens: API token xxxx... (admin) expired on 2020-01-01T00:00:00+01:00: "
                        "it is refused"]


def test_tokens_never_show_in_a_repr() -> None:
    """Settings end up in tracebacks and debug logs: only a token's first characters show, as for SecretStr."""
    shown = repr(load_settings(environ={"CTI_SECURITY__API_TOKENS": TABLE}))
    assert "'pppp...': 'admin'" in shown and "ffff..." in shown
    assert PLAIN not in shown and FUTURE not in shown and PAST not in shown
