"""Shared HTML pages: the EN/FR catalogue, picking a page's language, rendering, static files."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from cti.http.app import make_web_app
from cti.http.identity import Identity
from cti.settings import SecuritySettings
from cti.web import i18n
from cti.web.i18n import (
    LANGUAGES,
    MessageMissing,
    MessagesInvalid,
    accepted_languages,
    add_template_dir,
    catalogue,
    message,
    pick_language,
    register_messages,
    render,
)
from cti.web.static import StaticDirInvalid, add_static_dir, static_file

Client = TestClient[web.Request, web.Application]
CTI = Path(__file__).resolve().parents[2] / "cti"


def message_modules() -> list[str]:
    """Every module that registers texts at import (found in the source, so a new page is never left out)."""
    found = [path for path in CTI.rglob("*.py") if "register_messages(" in path.read_text(encoding="utf-8")]
    names = [".".join(path.relative_to(CTI.parent).with_suffix("").parts) for path in found]
    return sorted(name.removesuffix(".__init__") for name in names if name != "cti.web.i18n")


async def _status() -> dict[str, Any]:
    return {"healthy": True}


def test_every_message_has_english_and_french() -> None:
    modules = message_modules()
    assert {"cti.agents.pages", "cti.supervision.pages"} <= set(modules)
    for module in modules:
        importlib.import_module(module)
    texts = catalogue()
    assert {"login.title", "desk.title", "sup.title"} <= set(texts)
    missing = [(key, lang) for key, by_lang in texts.items() for lang in LANGUAGES if not by_lang.get(lang, "").strip()]
    assert missing == []


def test_register_refuses_a_missing_language_or_a_different_redefinition() -> None:
    with pytest.raises(MessagesInvalid, match=r"test\.half: missing fr"):
        register_messages({"test.half": {"en": "Half"}})
    with pytest.raises(MessagesInvalid, match=r"login\.title: already defined"):
        register_messages({"login.title": {"en": "Sign in", "fr": "Connexion"}})
    assert "test.half" not in catalogue()
    register_messages({"login.title": catalogue()["login.title"]})  # the same texts again: fine


def test_message_fills_fields_and_falls_back_to_english() -> None:
    assert message("nav.signed_in_as", "fr", name="alice") == "Connecté·e : alice"
    assert message("login.title", "de") == "Log in"
    with pytest.raises(MessageMissing):
        message("no.such.key", "en")


def _request(path: str = "/", **headers: str) -> web.Request:
    return make_mocked_request("GET", path, headers=headers)


def test_pick_language_order() -> None:
    user_fr = Identity(role="agent", via="session-cookie", language="fr")
    assert pick_language(_request("/?lang=en", Cookie="cti_lang=fr"), user_fr) == "en"
    assert pick_language(_request("/?lang=de", Cookie="cti_lang=fr"), None) == "fr"
    assert pick_language(_request("/", Cookie="cti_lang=en"), user_fr) == "en"
    assert pick_language(_request("/", **{"Accept-Language": "en"}), user_fr) == "fr"
    assert pick_language(_request("/", **{"Accept-Language": "de-DE, fr;q=0.5, en;q=0.4"})) == "fr"
    assert pick_language(_request("/", **{"Accept-Language": "de"})) == "en"
    assert pick_language(_request("/"), None, default="fr") == "fr"


@pytest.mark.parametrize(("header", "expected"), [
    ("", []),
    ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", ["fr", "en", "de", "*"]),
    ("en;q=0.2, fr", ["fr", "en"]),
    ("en;q=0, fr;q=bad", []),
    ("EN-gb", ["en"]),
])
def test_accepted_languages(header: str, expected: list[str]) -> None:
    assert accepted_languages(header) == expected


def test_render_escapes_and_translates(tmp_path: Path) -> None:
    (tmp_path / "test_page.html").write_text(
        '{% extends "base.html" %}{% block main %}<p id="v">{{ value }}</p>{{ t("login.title") }}{% endblock %}')
    add_template_dir(tmp_path)
    add_template_dir(tmp_path)  # twice: no harm
    response = render(_request("/x?lang=fr"), "test_page.html", status=201, value="<script>alert(1)</script>")
    assert response.status == 201 and response.content_type == "text/html"
    html = response.text or ""
    assert '<p id="v">&lt;script&gt;alert(1)&lt;/script&gt;</p>' in html
    assert '<html lang="fr">' in html and "Connexion" in html
    assert 'href="/x?lang=en"' in html  # the language switch keeps the page
    assert response.cookies["cti_lang"].value == "fr"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert i18n.environment().autoescape is True


def test_an_undefined_template_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "test_undefined.html").write_text("{{ nothing.here }}")
    add_template_dir(tmp_path)
    with pytest.raises(Exception, match="nothing"):
        render(_request(), "test_undefined.html")


# --- static files --------------------------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = make_web_app(SecuritySettings(), _status)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_core_css_is_public(client: Client) -> None:
    response = await client.get("/static/cti.css")
    assert response.status == 200
    assert response.content_type == "text/css"
    assert "--accent" in await response.text()


@pytest.mark.parametrize("path", ["/static/nope.css", "/static/../i18n.py", "/static/%2e%2e/i18n.py",
                                  "/static/..%2Fi18n.py", "/static/"])
async def test_nothing_outside_the_static_folders(client: Client, path: str) -> None:
    assert (await client.get(path)).status == 404
    assert static_file("../i18n.py") is None


async def test_a_package_adds_its_static_folder(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "app.js").write_text("console.log('hi')")
    (tmp_path / "secret.txt").write_text("no")
    add_static_dir("test-pkg", folder)
    add_static_dir("test-pkg", folder)  # again: no harm
    assert (await (await client.get("/static/test-pkg/app.js")).text()) == "console.log('hi')"
    assert (await client.get("/static/test-pkg/../secret.txt")).status == 404
    assert static_file("test-pkg/../secret.txt") is None
    with pytest.raises(StaticDirInvalid):
        add_static_dir("test-pkg", tmp_path)
    with pytest.raises(StaticDirInvalid):
        add_static_dir("Bad/Prefix", folder)
