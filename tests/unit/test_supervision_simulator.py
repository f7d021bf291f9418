"""The simulators page, ``GET /supervision/simulator``, and the call simulator's API against the scripted AMI
peer: who may use them, strict numbers and keys (nothing refused ever reaches Asterisk), the AMI actions a
call, its keys and its hang-up send, hang-ups seen on the link, and the limit on calls at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.ami import AmiClient
from cti.db import Database
from cti.http.app import make_web_app
from cti.http.auth import declared_roles
from cti.settings import SecuritySettings
from cti.supervision import simulator_http
from cti.supervision.call_simulator import CallSimulator, SimulatorInvalid
from cti.supervision.simulator_page import KEYPAD, MESSAGES
from cti.web.i18n import LANGUAGES
from tests.fakes.ami_peer import AmiPeer, AmiRequest, wait_until
from tests.support.ivr import demo_ivr
from tests.support.supervision_ivr import (
    ADMIN,
    AGENT,
    SUPERVISOR,
    TOKENS,
    Client,
    PagesServer,
    ami_settings,
    connected_ami,
    page_config,
    pages_server,
)

CALLS = "/api/simulator/calls"
DESK = {"number": "5551000", "caller_id": "0612345678"}
ROUTES = [("GET", CALLS), ("POST", CALLS), ("POST", CALLS + "/0123456789ab/dtmf"), ("DELETE", CALLS + "/0123456789ab")]


# --- the page ------------------------------------------------------------------------------------------------


@pytest.fixture
async def pages(database: Database) -> AsyncIterator[PagesServer]:
    async with pages_server(await demo_ivr(database)) as started:
        yield started


async def test_the_page_sends_anonymous_visitors_to_the_login_form_and_refuses_agents(pages: PagesServer) -> None:
    response, _html = await pages.page("/supervision/simulator", role=None)
    assert (response.status, response.headers["Location"]) == (303, "/login?next=/supervision/simulator")
    response, _html = await pages.page("/supervision/simulator", role="agent")
    assert response.status == 403


@pytest.mark.parametrize(("lang", "title", "say"), [("en", "What does a caller hear?", "The help desk is closed"),
                                                     ("fr", "Qu&#39;entend l&#39;appelant ?", "Le support est")])
async def test_the_page_offers_the_numbers_a_keypad_and_the_prompts_texts(pages: PagesServer, lang: str, title: str,
                                                                         say: str) -> None:
    response, html = await pages.page(f"/supervision/simulator?lang={lang}")
    assert response.status == 200 and f'<html lang="{lang}">' in html
    assert title in html
    assert '<option value="5551000">5551000 · Help desk (English)</option>' in html
    assert [key for key in KEYPAD if f'data-testid="key-{key}"' in html] == list(KEYPAD)
    assert 'value="0612345678"' in html
    config = page_config(html, "simulator-config")
    assert config["now"] == "2026-11-23T10:00:00+01:00"  # the server's clock, not the browser's
    assert config["max_calls"] == 3
    assert [(s["number"], s["timezone"]) for s in config["services"]] == [("5551000", "Europe/Paris"),
                                                                         ("5552000", "Europe/Paris")]
    assert config["prompts"]["closed"].startswith(say)
    assert config["messages"]["sim.outcome.voicemail"] in ("voicemail ({reason})", "messagerie ({reason})")


def test_every_simulator_text_is_in_english_and_french() -> None:
    assert all(key.startswith("sim.") for key in MESSAGES)
    assert all(MESSAGES[key][lang].strip() for key in MESSAGES for lang in LANGUAGES)


# --- the call simulator's API on the scripted AMI peer ---------------------------------------------------------


@dataclass
class Rig:
    client: Client
    peer: AmiPeer
    simulator: CallSimulator

    async def call(self, method: str, path: str, token: str = SUPERVISOR, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return response.status, await response.json()

    def sent(self, action: str) -> list[AmiRequest]:
        return [request for request in self.peer.received if request.action.lower() == action.lower()]


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    server = AmiPeer()
    server.script("PlayDTMF", [{"Response": "Success", "Message": "DTMF successfully queued"}])
    server.script("Hangup", [{"Response": "Success", "Message": "Channel Hungup"}])
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def rig(peer: AmiPeer) -> AsyncIterator[Rig]:
    async with connected_ami(peer) as ami:
        simulator = CallSimulator(ami, "from-pstn", max_calls=2, answer_timeout_s=2)
        app = make_web_app(SecuritySettings(api_tokens=TOKENS), _healthy)
        simulator_http.add_routes(app, simulator)
        async with TestClient(TestServer(app)) as client:
            yield Rig(client, peer, simulator)


async def _healthy() -> dict[str, Any]:
    return {"healthy": True}


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_only_supervisors_and_admins_use_the_call_simulator(rig: Rig, method: str, path: str) -> None:
    assert (await rig.client.request(method, path)).status == 401
    response = await rig.client.request(method, path, headers={"Authorization": f"Bearer {AGENT}"})
    assert response.status == 403
    routes = [route for route in rig.client.app.router.routes() if route.resource is not None
              and route.resource.canonical.startswith(CALLS)]
    assert {declared_roles(route.handler) for route in routes} == {frozenset({"admin", "supervisor"})}


async def test_a_call_is_originated_as_a_local_caller_parked_in_the_sim_context(rig: Rig) -> None:
    status, call = await rig.call("POST", CALLS, token=ADMIN, json=DESK)
    assert status == 201
    assert (call["number"], call["caller_id"], call["state"], call["digits"]) == ("5551000", "0612345678", "up", "")
    assert call["channel"] == "Local/5551000@from-pstn"  # the peer answers with the channel it was asked for
    assert call["placed_by"] == "admin (api token)"
    [originate] = rig.sent("Originate")
    assert (originate.get("Channel"), originate.get("Context"), originate.get("Exten")) == (
        "Local/5551000@from-pstn", "cti-sim", "s")
    assert originate.get("CallerID") == '"CTI simulator" <0612345678>'
    assert originate.get_all("Variable") == ["SIM_DIGITS=", "SIM_PLAY=", "SIM_HOLD=600"]
    status, listed = await rig.call("GET", CALLS)
    assert (status, [item["id"] for item in listed["calls"]], listed["max_calls"]) == (200, [call["id"]], 2)


@pytest.mark.parametrize("body", [
    {"number": "5551000@other-context", "caller_id": "0612345678"},
    {"number": "5551000", "caller_id": "06 12 34 56 78"},
    {"number": "5551000\r\nAction: Hangup", "caller_id": "0612345678"},
    {"number": "1" * 21, "caller_id": "0612345678"},
    {"number": "++5551000", "caller_id": "0612345678"},
    {"number": "", "caller_id": "0612345678"},
    {"number": 5551000, "caller_id": "0612345678"},
    {"number": "5551000"},
    {"number": "5551000", "caller_id": "0612345678", "context": "default"},
], ids=["at", "spaces", "crlf", "too-long", "two-plus", "empty", "not-a-string", "no-caller", "unknown-field"])
async def test_numbers_and_caller_ids_are_checked_before_anything_reaches_asterisk(rig: Rig,
                                                                                   body: dict[str, Any]) -> None:
    status, answer = await rig.call("POST", CALLS, json=body)
    assert status == 400 and answer["error"] in ("simulator.invalid", "http.body_invalid")
    assert rig.peer.originate_count == 0


async def test_keys_are_played_one_by_one_out_of_the_callers_channel(rig: Rig) -> None:
    _status, call = await rig.call("POST", CALLS, json={"number": "+33155555555", "caller_id": "+33612345678"})
    status, after = await rig.call("POST", f"{CALLS}/{call['id']}/dtmf", json={"digits": "1*#"})
    assert (status, after["digits"]) == (200, "1*#")
    sent = [(request.get("Channel"), request.get("Digit"), request.get("Duration")) for request in rig.sent("PlayDTMF")]
    assert sent == [("Local/+33155555555@from-pstn", key, "250") for key in "1*#"]
    for digits in ("12a", "", "1;2", 12):
        status, answer = await rig.call("POST", f"{CALLS}/{call['id']}/dtmf", json={"digits": digits})
        assert (status, answer["error"]) == (400, "simulator.invalid")
    assert len(rig.sent("PlayDTMF")) == 3


async def test_hanging_up_from_the_page_ends_the_call(rig: Rig) -> None:
    _status, call = await rig.call("POST", CALLS, json=DESK)
    status, ended = await rig.call("DELETE", f"{CALLS}/{call['id']}")
    assert (status, ended["state"], ended["cause"]) == (200, "ended", "hung up from the page")
    assert [request.get("Channel") for request in rig.sent("Hangup")] == ["Local/5551000@from-pstn"]
    status, answer = await rig.call("POST", f"{CALLS}/{call['id']}/dtmf", json={"digits": "1"})
    assert (status, answer["error"]) == (409, "simulator.call_ended")
    status, _answer = await rig.call("DELETE", f"{CALLS}/{call['id']}")
    assert status == 409 and len(rig.sent("Hangup")) == 1


async def test_a_hangup_event_before_the_actions_answer_is_still_the_pages_doing(rig: Rig) -> None:
    """Asterisk reports the channel's Hangup before it answers the Hangup action."""
    rig.peer.script("Hangup", lambda request: [
        {"Event": "Hangup", "Channel": request.get("Channel"), "Cause": "0", "Cause-txt": "Unknown"},
        {"Response": "Success", "Message": "Channel Hungup"}])
    _status, call = await rig.call("POST", CALLS, json=DESK)
    status, ended = await rig.call("DELETE", f"{CALLS}/{call['id']}")
    assert (status, ended["state"], ended["cause"]) == (200, "ended", "hung up from the page")


async def test_a_hangup_on_the_link_ends_the_call_and_frees_its_place(rig: Rig) -> None:
    _status, first = await rig.call("POST", CALLS, json=DESK)
    _status, _second = await rig.call("POST", CALLS, json={"number": "5552000", "caller_id": "0612345678"})
    status, answer = await rig.call("POST", CALLS, json=DESK)
    assert (status, answer["error"]) == (429, "simulator.too_many_calls")
    assert rig.peer.originate_count == 2
    await rig.peer.emit({"Event": "Hangup", "Channel": first["channel"], "Cause": "16", "Cause-txt": "Normal Clearing"})
    await wait_until(lambda: rig.simulator.active() < 2)
    _status, listed = await rig.call("GET", CALLS)
    [ended] = [call for call in listed["calls"] if call["id"] == first["id"]]
    assert (ended["state"], ended["cause"]) == ("ended", "Normal Clearing")
    status, _third = await rig.call("POST", CALLS, json=DESK)
    assert status == 201


async def test_a_key_on_a_call_that_has_gone_says_so(rig: Rig) -> None:
    rig.peer.script("PlayDTMF", [{"Response": "Error", "Message": "No such channel"}])
    _status, call = await rig.call("POST", CALLS, json=DESK)
    status, answer = await rig.call("POST", f"{CALLS}/{call['id']}/dtmf", json={"digits": "12"})
    assert (status, answer["error"]) == (409, "simulator.call_ended")
    assert len(rig.sent("PlayDTMF")) == 1  # the second key is not tried
    assert rig.simulator.get(call["id"]).state == "ended"


async def test_a_call_asterisk_cannot_place_is_refused_and_not_kept(rig: Rig) -> None:
    rig.peer.originate_result = "Failure"
    status, answer = await rig.call("POST", CALLS, json=DESK)
    assert (status, answer["error"]) == (502, "simulator.call_failed")
    assert rig.simulator.calls() == []


async def test_unknown_calls_are_404(rig: Rig) -> None:
    for method, path, body in (("POST", CALLS + "/0123456789ab/dtmf", {"digits": "1"}),
                               ("DELETE", CALLS + "/0123456789ab", None)):
        status, answer = await rig.call(method, path, json=body)
        assert (status, answer["error"]) == (404, "simulator.call_not_found")


async def test_without_asterisk_the_api_says_it_is_unreachable() -> None:
    simulator = CallSimulator(AmiClient(ami_settings(1)), "from-pstn")
    app = make_web_app(SecuritySettings(api_tokens=TOKENS), _healthy)
    simulator_http.add_routes(app, simulator)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(CALLS, json=DESK, headers={"Authorization": f"Bearer {SUPERVISOR}"})
        assert (response.status, (await response.json())["error"]) == (503, "simulator.asterisk_unreachable")


async def test_calls_that_ended_while_the_link_was_down_are_found_after_reconnecting(rig: Rig) -> None:
    _status, gone = await rig.call("POST", CALLS, json=DESK)
    _status, kept = await rig.call("POST", CALLS, json={"number": "5552000", "caller_id": "0612345678"})
    rig.peer.channels = [{"Channel": kept["channel"], "Uniqueid": kept["uniqueid"]}]
    logins = rig.peer.logins
    await rig.peer.drop()
    await wait_until(lambda: rig.peer.logins > logins and rig.simulator.get(gone["id"]).state == "ended")
    assert rig.simulator.get(kept["id"]).state == "up"


async def test_stopping_the_server_hangs_up_its_simulated_calls(rig: Rig) -> None:
    _status, call = await rig.call("POST", CALLS, json=DESK)
    await rig.client.app.shutdown()
    assert [request.get("Channel") for request in rig.sent("Hangup")] == [call["channel"]]
    assert rig.simulator.get(call["id"]).state == "ended"


def test_a_context_name_cannot_carry_anything_into_the_channel() -> None:
    with pytest.raises(SimulatorInvalid):
        CallSimulator(AmiClient(ami_settings(1)), "from-pstn/evil")
