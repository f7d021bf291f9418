"""Plugs in the supervision pages about service numbers: opening hours, call flows and messages, and the
simulators (with the call simulator's API). They edit through the IVR API (``cti.ivr.http``)."""

from __future__ import annotations

from aiohttp import web

from cti.ami import AmiClient
from cti.ivr.service import IvrService
from cti.settings import AsteriskSettings
from cti.supervision import flows_page, hours_page, simulator_http, simulator_page
from cti.supervision.call_simulator import CallSimulator
from cti.supervision.ivr_data import IVR_PAGES_KEY


def add_routes(app: web.Application, ivr: IvrService, ami: AmiClient, asterisk: AsteriskSettings) -> None:
    app[IVR_PAGES_KEY] = ivr
    hours_page.add_routes(app)
    flows_page.add_routes(app)
    simulator_page.add_routes(app)
    simulator_http.add_routes(app, CallSimulator(ami, asterisk.inbound_context))
