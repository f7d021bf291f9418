"""Signed media URLs: an audio player without headers can fetch exactly the signed path until it expires."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.http.app import make_web_app
from cti.http.auth import SIGNING_KEY, requires
from cti.http.signed_urls import allow_signed_urls, sign, verify
from cti.settings import SecuritySettings

KEY = b"k" * 32


def test_signature_binds_path_and_expiry() -> None:
    url = sign(KEY, "/a/1", ttl_s=60, now=1000)
    query = dict(part.split("=") for part in url.split("?")[1].split("&"))
    assert verify(KEY, "/a/1", query["expires"], query["signature"], now=1000)
    assert not verify(KEY, "/a/2", query["expires"], query["signature"], now=1000)  # another path
    assert not verify(KEY, "/a/1", str(int(query["expires"]) + 1), query["signature"], now=1000)  # tampered
    assert not verify(KEY, "/a/1", query["expires"], query["signature"], now=1061)  # expired
    assert not verify(b"other" * 8, "/a/1", query["expires"], query["signature"], now=1000)
    assert not verify(KEY, "/a/1", "soon", query["signature"], now=1000)


@allow_signed_urls
@requires("admin")
async def _audio(_request: web.Request) -> web.Response:
    return web.Response(body=b"RIFF", content_type="audio/wav")


@requires("admin")
async def _not_signable(_request: web.Request) -> web.Response:
    return web.Response(text="secret")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def status() -> dict[str, object]:
        return {"healthy": True}

    app = make_web_app(SecuritySettings(url_signing_key="s" * 32), status)
    app.router.add_get("/audio/{n}", _audio)
    app.router.add_get("/plain/{n}", _not_signable)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_signed_url_opens_only_routes_that_allow_it(client: TestClient[web.Request, web.Application]) -> None:
    key = client.app[SIGNING_KEY]
    assert key == b"s" * 32
    assert (await client.get(sign(key, "/audio/1"))).status == 200
    assert (await client.get("/audio/1")).status == 401
    assert (await client.get(sign(key, "/audio/1").replace("/audio/1", "/audio/2"))).status == 401
    assert (await client.get(sign(key, "/plain/1"))).status == 401
    assert (await client.post(sign(key, "/audio/1"))).status == 405
