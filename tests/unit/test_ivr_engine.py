"""The flow walk through the simulator (no database): prompts, menus, branches, endings and the step guard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.contacts.profile import CallerProfile
from cti.ivr.engine import MAX_STEPS, NEXT_OPENING_PROMPT, CallFacts, FlowRunError, Outcome
from cti.ivr.flow import EnqueueNode, Flow, node_targets, parse_flow
from cti.ivr.schedule import ScheduleState, ScheduleStatus
from cti.ivr.simulator import Simulation, Step, simulate
from cti.ivr.validate import validate_flow
from tests.support.ivr import MONDAY_10, PARIS, played, read, said

UNKNOWN = CallerProfile(number="+33155555555")
VIP = CallerProfile(number="+33612345678", contact_id=7, vip=True, contract_level="gold")
HANGUP = Outcome("hangup")
END: dict[str, Any] = {"type": "hangup"}
TUESDAY_0830 = datetime(2026, 11, 24, 8, 30, tzinfo=PARIS)


def facts(status: str | None = "open", caller: CallerProfile = UNKNOWN,
          next_opening: datetime | None = None) -> CallFacts:
    state = None if status is None else ScheduleState(ScheduleStatus(status))
    return CallFacts("5551000", caller, MONDAY_10, state, next_opening)


def flow(start: str, **nodes: dict[str, Any]) -> Flow:
    return parse_flow({"start": start, "nodes": {**nodes, "end": END}})


async def run(walk: Flow, call: CallFacts | None = None, keys: tuple[str, ...] = (), language: str = "en",
              **options: Any) -> Simulation:
    return await simulate(walk, call or facts(), language, list(keys), **options)


# --- play variants ---------------------------------------------------------------------------------

VARIANTS = flow("greet", greet={"type": "play", "prompts": ["welcome"], "next": "end", "variants": [
    {"when": {"caller": ["vip"]}, "prompts": ["welcome-vip"]},
    {"when": {"hours": ["closed", "holiday"], "language": ["en"]}, "prompts": ["closed"]},
    {"when": {"language": ["fr"]}, "prompts": ["transferring", "welcome"]}]})


@pytest.mark.parametrize(("call", "language", "expected"), [
    (facts(), "en", ["welcome"]),
    (facts(caller=VIP), "en", ["welcome-vip"]),
    (facts("closed", caller=VIP), "en", ["welcome-vip"]),  # first variant that holds wins
    (facts("closed"), "en", ["closed"]),
    (facts("holiday"), "en", ["closed"]),
    (facts("closed"), "fr", ["transferring", "welcome"]),  # AND inside a condition: language fails
    (facts(), "fr", ["transferring", "welcome"]),
])
async def test_play_variants(call: CallFacts, language: str, expected: list[str]) -> None:
    result = await run(VARIANTS, call, language=language)
    assert result.steps == [played(prompt, language) for prompt in expected]
    assert (result.outcome, result.path) == (HANGUP, ["greet", "end"])


WAIT = flow("greet", greet={"type": "play", "prompts": ["welcome"], "next": "end", "variants": [
    {"when": {"wait": {"queue": "support", "max_s": 60}}, "prompts": ["wait-short"]},
    {"when": {"wait": {"queue": "support", "min_s": 60}}, "prompts": ["wait-long"]}]})


@pytest.mark.parametrize(("estimate", "expected"), [
    (None, "welcome"), (0.0, "wait-short"), (59.9, "wait-short"), (60.0, "wait-long"), (3600.0, "wait-long")])
async def test_play_variant_by_wait_band(estimate: float | None, expected: str) -> None:
    asked: list[str] = []

    async def wait_estimate(queue: str) -> float | None:
        asked.append(queue)
        return estimate

    result = await run(WAIT, wait_estimate=wait_estimate)
    assert result.steps == [played(expected)]
    assert set(asked) == {"support"}


async def test_the_wait_is_not_asked_when_the_rest_of_the_condition_fails() -> None:
    walk = flow("greet", greet={"type": "play", "prompts": ["welcome"], "next": "end", "variants": [
        {"when": {"caller": ["vip"], "wait": {"queue": "support"}}, "prompts": ["wait-short"]}]})

    async def never(queue: str) -> float | None:
        raise AssertionError("asked for a wait estimate")

    assert (await run(walk, wait_estimate=never)).steps == [played("welcome")]


# --- menus -----------------------------------------------------------------------------------------

MENU = flow("main", main={"type": "menu", "prompt": "main-menu", "options": {"1": "end", "*": "star", "#": "hash"},
                          "max_retries": 1, "on_failure": "failed"},
            star={"type": "voicemail", "reason": "request"}, hash={"type": "transfer", "number": "+33100000000"},
            failed={"type": "voicemail", "reason": "closed"})


async def test_an_invalid_key_is_retried_then_a_valid_one_goes_on() -> None:
    result = await run(MENU, keys=("5", "1"))
    assert result.steps == [read("main-menu", "5"), played("invalid-input"), read("main-menu", "1")]
    assert (result.outcome, result.path, result.unused_keys) == (HANGUP, ["main:invalid(5)", "main:1", "end"], [])


async def test_silence_exhausts_the_retries_then_on_failure() -> None:
    result = await run(MENU)
    assert result.steps == [read("main-menu", ""), played("no-input"), read("main-menu", ""), played("no-input")]
    assert result.outcome == Outcome("voicemail", reason="closed")
    assert result.path == ["main:no-input", "main:no-input", "failed"]


async def test_retry_prompts_can_be_switched_off() -> None:
    walk = flow("main", main={"type": "menu", "prompt": "main-menu", "options": {"1": "end"}, "max_retries": 2,
                              "invalid_prompt": None, "no_input_prompt": None, "on_failure": "end"})
    result = await run(walk, keys=("7", "", "8", "1"))
    assert result.steps == [read("main-menu", "7"), read("main-menu", ""), read("main-menu", "8")]
    assert result.path == ["main:invalid(7)", "main:no-input", "main:invalid(8)", "end"]
    assert result.unused_keys == ["1"]


@pytest.mark.parametrize(("key", "outcome"), [
    ("*", Outcome("voicemail", reason="request")), ("#", Outcome("transfer", number="+33100000000"))])
async def test_star_and_hash_options(key: str, outcome: Outcome) -> None:
    result = await run(MENU, keys=(key,))
    assert result.outcome == outcome
    assert result.path[0] == f"main:{key}"


# --- language --------------------------------------------------------------------------------------

LANGUAGE = flow("lang", lang={"type": "language", "prompt": "choose-language", "options": {"1": "en", "2": "fr"},
                              "next": "main"},
                main={"type": "menu", "prompt": "main-menu", "options": {"1": "end"}, "on_failure": "end"})


async def test_choosing_a_language_switches_later_prompts() -> None:
    result = await run(LANGUAGE, keys=("2", "1"))
    assert result.steps == [read("choose-language", "2"), Step("language", language="fr"),
                            read("main-menu", "1", "fr")]
    assert (result.language, result.path) == ("fr", ["lang:fr", "main:1", "end"])


async def test_no_language_chosen_keeps_the_service_language() -> None:
    result = await run(LANGUAGE, keys=("5", "", "1"), language="fr")
    assert result.steps == [read("choose-language", "5", "fr"), read("choose-language", "", "fr"),
                            read("main-menu", "1", "fr")]
    assert (result.language, result.path) == ("fr", ["lang:default", "main:1", "end"])


# --- hours -----------------------------------------------------------------------------------------

STATES = ("open", "closed", "holiday", "override_open", "override_closed")
ENDINGS = {state: {"type": "transfer", "number": f"+3310000000{index}"} for index, state in enumerate(STATES)}


@pytest.mark.parametrize(("status", "branches", "target"), [
    *[(state, STATES, state) for state in STATES],
    ("holiday", ("open", "closed"), "closed"),
    ("override_open", ("open", "closed"), "open"),
    ("override_closed", ("open", "closed", "holiday"), "closed"),
    (None, ("open", "closed"), "open"),  # a service without hours is open
])
async def test_hours_branches(status: str | None, branches: tuple[str, ...], target: str) -> None:
    walk = parse_flow({"start": "hours", "nodes": {
        "hours": {"type": "hours", **{state: f"to-{state.replace('_', '-')}" for state in branches}},
        **{f"to-{state.replace('_', '-')}": ENDINGS[state] for state in branches}}})
    result = await run(walk, facts(status))
    assert result.outcome == Outcome("transfer", number=ENDINGS[target]["number"])
    assert result.path[0] == f"hours:{status or 'open'}"


@pytest.mark.parametrize(("opening", "expected"), [
    (TUESDAY_0830, [played("closed"), played(NEXT_OPENING_PROMPT),
                    said("2026-11-24T08:30:00+01:00")]),
    (None, [played("closed")]),  # nothing to say when no opening is known
])
async def test_say_next_opening(opening: datetime | None, expected: list[Step]) -> None:
    walk = flow("closed", closed={"type": "play", "prompts": ["closed"], "say_next_opening": True, "next": "end"})
    assert (await run(walk, facts("closed", next_opening=opening))).steps == expected


# --- caller rules ----------------------------------------------------------------------------------

CALLER = flow("who", who={"type": "caller", "default": "end", "rules": [
    {"when": {"caller": ["blocked"]}, "next": "end"},
    {"when": {"caller": ["anonymous"]}, "next": "end"},
    {"when": {"contract": ["gold", "platinum"]}, "next": "end"},
    {"when": {"number_prefix": ["+336", "+337"]}, "next": "end"},
    {"when": {"caller": ["known"]}, "next": "end"}]})


@pytest.mark.parametrize(("caller", "taken"), [
    (CallerProfile(number="+33612345678", blocked=True, contact_id=1, contract_level="gold"), "rule1"),
    (CallerProfile(number="", anonymous=True), "rule2"),
    (VIP, "rule3"),  # gold contract, also a +336 number: the first rule that matches wins
    (CallerProfile(number="+33712345678"), "rule4"),
    (CallerProfile(number="+33155555555", contact_id=3, contract_level="standard"), "rule5"),
    (UNKNOWN, "default"),
])
async def test_caller_rules_first_match_wins(caller: CallerProfile, taken: str) -> None:
    assert (await run(CALLER, facts(caller=caller))).path == [f"who:{taken}", "end"]


# --- endings ---------------------------------------------------------------------------------------

QUEUE = flow("q", q={"type": "enqueue", "queue": "support", "skills": {"network": 2}, "priority": 5,
                     "overflow": "busy"}, busy={"type": "voicemail", "reason": "overflow"})


@pytest.mark.parametrize(("accepts", "outcome", "path"), [
    (False, Outcome("voicemail", reason="overflow"), ["q:overflow", "busy"]),
    (True, Outcome("enqueue", queue="support", skills={"network": 2}, priority=5), ["q"]),
])
async def test_enqueue_asks_the_acd(accepts: bool, outcome: Outcome, path: list[str]) -> None:
    checked: list[EnqueueNode] = []

    async def queue_check(node: EnqueueNode) -> bool:
        checked.append(node)
        return accepts

    result = await run(QUEUE, queue_check=queue_check)
    assert (result.outcome, result.path, result.steps) == (outcome, path, [])
    assert [node.queue for node in checked] == ["support"]


async def test_without_an_acd_every_enqueue_overflows() -> None:
    assert (await run(QUEUE)).outcome == Outcome("voicemail", reason="overflow")


@pytest.mark.parametrize(("node", "steps", "outcome"), [
    ({"type": "transfer", "number": "+33100000000", "prompts": ["transferring"]}, [played("transferring")],
     Outcome("transfer", number="+33100000000")),
    ({"type": "hangup", "prompts": ["blocked-caller"]}, [played("blocked-caller")], HANGUP),
    ({"type": "voicemail"}, [], Outcome("voicemail", reason="request")),
])
async def test_endings(node: dict[str, Any], steps: list[Step], outcome: Outcome) -> None:
    result = await run(parse_flow({"start": "last", "nodes": {"last": node}}))
    assert (result.steps, result.outcome, result.path) == (steps, outcome, ["last"])


# --- the step guard --------------------------------------------------------------------------------

LOOP = flow("main", main={"type": "menu", "prompt": "main-menu", "options": {"1": "main"}, "on_failure": "end"})


async def test_a_caller_who_keeps_pressing_is_stopped_after_max_steps() -> None:
    with pytest.raises(FlowRunError, match=f"more than {MAX_STEPS} steps; last node 'main'") as caught:
        await run(LOOP, keys=("1",) * (MAX_STEPS + 5))
    assert caught.value.code == "ivr.flow_run"


async def test_max_steps_is_the_number_of_nodes_visited() -> None:
    result = await run(LOOP, keys=("1",) * (MAX_STEPS - 2))  # MAX_STEPS - 1 menu visits, then the ending
    assert (result.outcome, len(result.path)) == (HANGUP, MAX_STEPS - 2 + 3 + 1)
    with pytest.raises(FlowRunError, match="last node 'end'"):  # one key more: the ending is visit MAX_STEPS + 1
        await run(LOOP, keys=("1",) * (MAX_STEPS - 1))


# --- property: a validated flow never leaves the caller stuck -----------------------------------------

ENDING_NODES = [{"type": "hangup"}, {"type": "voicemail", "reason": "closed"}, {"type": "transfer", "number": "+3312"}]


@st.composite
def small_flows(draw: st.DrawFn) -> Flow:
    """Nodes n0..n{k-1} then endings: every automatic edge and every on_failure goes forward (so silence
    always moves on); menu keys may go anywhere, backwards too (loops through a menu are allowed)."""
    count = draw(st.integers(1, 6))
    endings = [f"e{i}" for i in range(draw(st.integers(1, 3)))]
    ids = [f"n{i}" for i in range(count)]

    nodes: dict[str, Any] = {ending: draw(st.sampled_from(ENDING_NODES)) for ending in endings}
    for index, node_id in enumerate(ids):
        nodes[node_id] = draw(_node(st.sampled_from([*ids[index + 1:], *endings]), st.sampled_from([*ids, *endings])))
    return parse_flow({"start": "n0", "nodes": _reachable_only(nodes)})


def _node(ahead: st.SearchStrategy[str], anywhere: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    def shape(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(fields)

    return st.one_of(
        shape(type=st.just("play"), prompts=st.just(["welcome"]), next=ahead),
        shape(type=st.just("menu"), prompt=st.just("main-menu"), on_failure=ahead, max_retries=st.integers(0, 2),
              options=st.dictionaries(st.sampled_from("0123456789*#"), anywhere, min_size=1, max_size=4)),
        shape(type=st.just("hours"), open=ahead, closed=ahead),
        shape(type=st.just("caller"), default=ahead,
              rules=st.lists(shape(when=st.just({"caller": ["vip"]}), next=ahead), min_size=1, max_size=2)),
        shape(type=st.just("language"), prompt=st.just("choose-language"), options=st.just({"1": "en", "2": "fr"}),
              next=ahead),
        shape(type=st.just("enqueue"), queue=st.just("support"), overflow=ahead))


def _reachable_only(nodes: dict[str, Any]) -> dict[str, Any]:
    """Drops the nodes the draw left unreachable (validation would refuse them)."""
    whole = parse_flow({"start": "n0", "nodes": nodes})
    seen, todo = {"n0"}, ["n0"]
    while todo:
        targets = {target for _, target in node_targets(whole.nodes[todo.pop()])} - seen
        seen |= targets
        todo += targets
    return {node_id: node for node_id, node in nodes.items() if node_id in seen}


@settings(max_examples=200, deadline=None)
@given(walk=small_flows(), keys=st.lists(st.sampled_from(["", "1", "2", "9", "*", "#", "5"]), max_size=20),
       status=st.sampled_from(["open", "closed", "holiday"]), vip=st.booleans())
async def test_every_validated_flow_ends_for_any_keys(walk: Flow, keys: list[str], status: str, vip: bool) -> None:
    """The generated flows pass validation, and each run ends: between two keys that go back there is at most
    one pass forward over the nodes, so at most (20 keys + 1) * 9 nodes < MAX_STEPS visits."""
    validate_flow(walk, {"welcome", "main-menu", "choose-language", "invalid-input", "no-input"})
    result = await run(walk, facts(status, caller=VIP if vip else UNKNOWN), tuple(keys))
    assert walk.nodes[result.path[-1]].type in ("hangup", "voicemail", "transfer")
    assert result.outcome.kind in ("hangup", "voicemail", "transfer")  # no ACD: an enqueue overflows


@settings(max_examples=100, deadline=None)
@given(walk=small_flows(), status=st.sampled_from(["open", "closed", "holiday", "override_closed"]))
async def test_silence_ends_every_such_flow_without_a_key_read_more_than_retries_allow(walk: Flow,
                                                                                       status: str) -> None:
    """Silence moves every menu to on_failure after its retries, so each input node is read at most once over."""
    result = await run(walk, facts(status))
    reads = [step for step in result.steps if step.action == "read"]
    assert all(step.key == "" for step in reads)
    assert len(reads) <= sum(getattr(node, "max_retries", -1) + 1 for node in walk.nodes.values())
