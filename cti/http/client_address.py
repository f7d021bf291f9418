"""The address of the browser behind a request, for the per-address login limits and the logs.

Behind a reverse proxy every request comes from the proxy. ``[security] trusted_proxies`` lists the proxies'
networks: only when the request comes from one of them is ``X-Forwarded-For`` read, from the right (the hop
nearest to us) leftwards, skipping trusted hops; the first other address is the client's. A client reaching
the server directly cannot forge its address this way, since its own address is not trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES_KEY: web.AppKey[tuple[Network, ...]] = web.AppKey("cti_trusted_proxies", tuple)
MAX_HOPS = 20  # a longer header is someone's game: read no further


def parse_networks(texts: Sequence[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` as networks; raises ``ValueError`` naming the bad entry."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def client_address(request: web.Request) -> str | None:
    """The client's address: ``request.remote``, or what a trusted proxy says it forwarded."""
    trusted = request.app.get(TRUSTED_PROXIES_KEY, ())
    remote = request.remote
    if not trusted or not _within(remote, trusted):
        return remote
    hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
    for hop in reversed(hops[-MAX_HOPS:]):
        if _address(hop) is None:
            return remote  # a malformed hop: trust nothing the proxies appended before it
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops and _address(hops[0]) else remote


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").split("%", 1)[0])
    except ValueError:
        return None


def _within(text: str | None, networks: tuple[Network, ...]) -> bool:
    address = _address(text)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == network.version and address in network for network in networks)
