"""Which address a login is counted against: the peer's, or the client a trusted proxy forwarded."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from cti.http.client_address import TRUSTED_PROXIES_KEY, client_address, parse_networks
from cti.settings import SecuritySettings

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8::/32"])


def _request(remote: str, forwarded: list[str] | None = None, trusted: tuple = PROXIES) -> web.Request:
    app = web.Application()
    app[TRUSTED_PROXIES_KEY] = trusted
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (remote, 40000) if name == "peername" else default
    headers = [("X-Forwarded-For", value) for value in forwarded or []]
    return make_mocked_request("POST", "/login", headers=headers, app=app, transport=transport)


@pytest.mark.parametrize(("remote", "forwarded", "expected"), [
    ("203.0.113.7", None, "203.0.113.7"),  # direct
    ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # direct, forging a header: ignored
    ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # through our proxy
    ("10.0.0.2", ["198.51.100.66, 198.51.100.1"], "198.51.100.1"),  # the client put a fake hop first
    ("10.0.0.2", ["198.51.100.1, 10.0.0.9"], "198.51.100.1"),  # two proxies of ours
    ("10.0.0.2", ["198.51.100.1", "10.0.0.9"], "198.51.100.1"),  # the same over two headers
    ("10.0.0.2", ["10.0.0.8, 10.0.0.9"], "10.0.0.8"),  # only our own hops: the leftmost
    ("10.0.0.2", ["garbage, 198.51.100.1"], "198.51.100.1"),  # rightmost untrusted hop found before the junk
    ("10.0.0.2", ["198.51.100.1, garbage"], "10.0.0.2"),  # junk appended by a hop we trust: trust nothing
    ("10.0.0.2", None, "10.0.0.2"),  # our proxy, no header
    ("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped proxy address
    ("2001:db8::5", ["2001:db8:1::1, 2a01:e0a::7"], "2a01:e0a::7"),
])
def test_the_client_address(remote: str, forwarded: list[str] | None, expected: str) -> None:
    assert client_address(_request(remote, forwarded)) == expected


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address(_request("10.0.0.2", ["198.51.100.1"], trusted=())) == "10.0.0.2"


def test_a_bad_network_is_refused_at_load_time_by_name() -> None:
    with pytest.raises(ValueError, match="is not an IP address or network"):
        SecuritySettings(trusted_proxies=["10.0.0.0/8", "10.0.0.300/8"])
