"""REST API of the call simulator (admins and supervisors): place a real test call, press keys, hang up.

    GET    /api/simulator/calls                 {"calls": [...], "max_calls": 3}
    POST   /api/simulator/calls                 {"number": "5551000", "caller_id": "0612345678"} -> 201 {call}
    POST   /api/simulator/calls/{id}/dtmf       {"digits": "1"} -> {call}
    DELETE /api/simulator/calls/{id}            -> {call} (ended)
"""

from __future__ import annotations

from aiohttp import web

from cti.ami import AmiError, AmiNotConnected
from cti.http.auth import requires
from cti.http.bodies import BodyInvalid, json_object
from cti.http.errors import answers
from cti.http.identity import identity_of
from cti.supervision.call_simulator import (
    CallSimulator,
    SimulatedCallEnded,
    SimulatedCallFailed,
    SimulatedCallNotFound,
    SimulatorInvalid,
    TooManyCalls,
)
from cti.supervision.pages import SUPERVISORS

SIMULATOR_KEY: web.AppKey[CallSimulator] = web.AppKey("call_simulator", CallSimulator)
CALLS = "/api/simulator/calls"

simulator_errors = answers(
    ((SimulatorInvalid, BodyInvalid), 400), (SimulatedCallNotFound, 404), (SimulatedCallEnded, 409),
    (TooManyCalls, 429), (AmiNotConnected, 503, "simulator.asterisk_unreachable"),
    ((SimulatedCallFailed, AmiError), 502))


def add_routes(app: web.Application, simulator: CallSimulator) -> None:
    """Routes, and the simulator's hold on the AMI link for the application's life."""
    app[SIMULATOR_KEY] = simulator
    detach = simulator.attach()

    async def on_shutdown(_app: web.Application) -> None:
        await simulator.hang_up_all()
        detach()

    app.on_shutdown.append(on_shutdown)
    app.router.add_get(CALLS, list_calls)
    app.router.add_post(CALLS, place_call)
    app.router.add_post(CALLS + "/{call_id}/dtmf", send_dtmf)
    app.router.add_delete(CALLS + "/{call_id}", hang_up)


@requires(*SUPERVISORS)
@simulator_errors
async def list_calls(request: web.Request) -> web.StreamResponse:
    simulator = request.app[SIMULATOR_KEY]
    return web.json_response({"calls": [call.as_dict() for call in simulator.calls()],
                              "max_calls": simulator.max_calls})


@requires(*SUPERVISORS)
@simulator_errors
async def place_call(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, allowed=("number", "caller_id"))
    call = await request.app[SIMULATOR_KEY].place(body.get("number"), body.get("caller_id"),
                                                  identity_of(request).author)
    return web.json_response(call.as_dict(), status=201)


@requires(*SUPERVISORS)
@simulator_errors
async def send_dtmf(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, allowed=("digits",))
    call = await request.app[SIMULATOR_KEY].send_digits(request.match_info["call_id"], body.get("digits"))
    return web.json_response(call.as_dict())


@requires(*SUPERVISORS)
@simulator_errors
async def hang_up(request: web.Request) -> web.StreamResponse:
    call = await request.app[SIMULATOR_KEY].hang_up(request.match_info["call_id"])
    return web.json_response(call.as_dict())
