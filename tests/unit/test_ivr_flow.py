"""The flow model (shape errors with their exact paths, dump/parse) and the graph rules of validate_flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cti.demo import demo_documents
from cti.ivr.default_flow import DEFAULT_FLOW
from cti.ivr.flow import MAX_NODES, Flow, FlowInvalid, MenuNode, dump_flow, parse_flow
from cti.ivr.validate import validate_flow
from cti.prompts import load_catalog

CATALOG = frozenset(load_catalog())
END: dict[str, Any] = {"type": "hangup"}
NAME_RULE = "String should match pattern '^[a-z0-9][a-z0-9-]{0,63}$'"


def menu(options: dict[str, str], on_failure: str = "end", **extra: Any) -> dict[str, Any]:
    return {"type": "menu", "prompt": "main-menu", "options": options, "on_failure": on_failure, **extra}


def play(next_node: str, *prompts: str) -> dict[str, Any]:
    return {"type": "play", "prompts": list(prompts or ["welcome"]), "next": next_node}


def refusal(data: Any) -> list[str]:
    with pytest.raises(FlowInvalid) as caught:
        parse_flow(data)
    return caught.value.errors


def graph_refusal(data: dict[str, Any], known: frozenset[str] = CATALOG) -> list[str]:
    flow = parse_flow(data)
    with pytest.raises(FlowInvalid) as caught:
        validate_flow(flow, known)
    return caught.value.errors


# --- shape -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("nodes", "expected"), [
    pytest.param({"a": {"type": "bogus"}}, [
        "nodes.a: Input tag 'bogus' found using 'type' does not match any of the expected tags: 'play', 'menu', "
        "'language', 'hours', 'caller', 'enqueue', 'voicemail', 'transfer', 'hangup'"], id="bad-node-type"),
    pytest.param({"a": {"prompts": []}}, ["nodes.a: Unable to extract tag using discriminator 'type'"],
                 id="no-node-type"),
    pytest.param({"a": menu({"1": "a", "x": "a", "12": "a"})},
                 ["nodes.a.options: option keys must be one of 0-9, * or #, not '12', 'x'"], id="bad-keys"),
    pytest.param({"main": menu({"1": "a"}, timeout_s=31)},
                 ["nodes.main.timeout_s: Input should be less than or equal to 30"], id="timeout-too-long"),
    pytest.param({"main": menu({"1": "a"}, timeout_s=0)},
                 ["nodes.main.timeout_s: Input should be greater than or equal to 1"], id="timeout-zero"),
    pytest.param({"a": play("b", "Welcome_1")}, [f"nodes.a.prompts.0: {NAME_RULE}"], id="bad-prompt-name"),
    pytest.param({"a": menu({"1": "a"}, invalid_prompt="../etc")}, [f"nodes.a.invalid_prompt: {NAME_RULE}"],
                 id="bad-retry-prompt-name"),
    pytest.param({"a": {**play("b"), "colour": "blue"}}, ["nodes.a.colour: Extra inputs are not permitted"],
                 id="unknown-key"),
    pytest.param({"Main": END}, ["nodes.Main.[key]: String should match pattern '^[a-z0-9][a-z0-9_-]{0,63}$'"],
                 id="bad-node-id"),
    pytest.param({"a": {"type": "transfer", "number": "01-23"}},
                 ["nodes.a.number: String should match pattern '^\\+?[0-9]{2,20}$'"], id="bad-transfer-number"),
    # node ids and fields named like node types keep their place in the path
    pytest.param({"hours": {"type": "hours", "open": "a"}}, ["nodes.hours.closed: Field required"],
                 id="node-called-hours"),
    pytest.param({"menu": menu({"1": "a"}, max_retries=10)},
                 ["nodes.menu.max_retries: Input should be less than or equal to 9"], id="node-called-menu"),
    pytest.param({"a": {**play("b"), "variants": [{"when": {"caller": ["vipp"]}, "prompts": ["welcome-vip"]}]}},
                 ["nodes.a.variants.0.when.caller.0: Input should be 'known', 'unknown', 'vip', 'anonymous' or "
                  "'blocked'"], id="condition-on-caller"),
])
def test_shape_errors_name_their_path(nodes: dict[str, Any], expected: list[str]) -> None:
    assert refusal({"start": "a", "nodes": nodes}) == expected


def test_every_shape_error_is_reported_at_once() -> None:
    errors = refusal({"start": "Bad", "extra": 1, "nodes": {"a": play("b", "X"), "m": menu({"x": "a"})}})
    assert errors == [
        "start: String should match pattern '^[a-z0-9][a-z0-9_-]{0,63}$'",
        f"nodes.a.prompts.0: {NAME_RULE}",
        "nodes.m.options: option keys must be one of 0-9, * or #, not 'x'",
        "extra: Extra inputs are not permitted",
    ]


@pytest.mark.parametrize(("data", "expected"), [
    ([1], "flow: Input should be a valid dictionary or instance of Flow"),
    ({"start": "a", "nodes": {}}, "nodes: Dictionary should have at least 1 item after validation, not 0"),
    ({"nodes": {"a": END}}, "start: Field required"),
])
def test_document_level_errors(data: Any, expected: str) -> None:
    assert refusal(data) == [expected]


def test_flow_invalid_carries_a_stable_code_and_every_reason() -> None:
    error = FlowInvalid(["first", "second"])
    assert (error.code, str(error), error.errors) == ("ivr.flow_invalid", "first; second", ["first", "second"])


def test_defaults_are_filled_in() -> None:
    node = parse_flow({"start": "m", "nodes": {"m": menu({"*": "end", "#": "end"}), "end": END}}).nodes["m"]
    assert isinstance(node, MenuNode)
    assert (node.timeout_s, node.max_retries, node.invalid_prompt, node.no_input_prompt) == (
        5, 2, "invalid-input", "no-input")


# --- dump / parse ----------------------------------------------------------------------------------


def _demo_flows() -> list[Any]:
    return [pytest.param(yaml.safe_load(path.read_text())["flow"], id=path.stem) for path in demo_documents()]


@pytest.mark.parametrize("source", _demo_flows())
def test_demo_flows_round_trip_and_validate(source: dict[str, Any]) -> None:
    flow = parse_flow(source)
    dumped = dump_flow(flow)
    assert parse_flow(dumped) == flow
    assert dump_flow(parse_flow(dumped)) == dumped
    assert dumped["nodes"]["technical"] == {"type": "enqueue", "queue": "support", "skills": {"network": 1},
                                            "overflow": "busy"}  # priority 0 is the default: not written back
    assert dumped["nodes"]["message"] == {"type": "voicemail"}
    validate_flow(flow, CATALOG)


def test_dump_keeps_a_default_switched_off() -> None:
    flow = parse_flow({"start": "m", "nodes": {"m": menu({"1": "end"}, no_input_prompt=None), "end": END}})
    assert dump_flow(flow)["nodes"]["m"] == {"type": "menu", "prompt": "main-menu", "options": {"1": "end"},
                                             "no_input_prompt": None, "on_failure": "end"}


def test_the_default_flow_is_valid() -> None:
    validate_flow(DEFAULT_FLOW, CATALOG)


def test_demo_yaml_is_what_the_demo_seeds(tmp_path: Path) -> None:
    assert [path.name for path in demo_documents()] == ["5551000.yaml", "5552000.yaml"]
    assert demo_documents(tmp_path) == []


# --- graph rules -----------------------------------------------------------------------------------


def _ok(data: dict[str, Any]) -> Flow:
    flow = parse_flow(data)
    validate_flow(flow, CATALOG)
    return flow


def test_dangling_targets_are_reported_alone() -> None:
    errors = graph_refusal({"start": "nowhere", "nodes": {
        "main": menu({"1": "billng"}, on_failure="gone"), "orphan": play("end", "not-a-prompt"), "end": END}})
    assert errors == ["start: node 'nowhere' does not exist",
                      "node 'main': key 1 goes to 'billng', which does not exist",
                      "node 'main': on_failure goes to 'gone', which does not exist"]


@pytest.mark.parametrize(("fallback", "expected"), [
    ("missing", "fallback: node 'missing' does not exist"),
    ("main", "fallback: node 'main' is a menu node; a fallback must be a voicemail, transfer or hangup node"),
])
def test_fallback_rules(fallback: str, expected: str) -> None:
    assert graph_refusal({"start": "main", "fallback": fallback,
                          "nodes": {"main": menu({"1": "end"}), "end": END}}) == [expected]


@pytest.mark.parametrize("ending", [{"type": "voicemail", "reason": "closed"}, {"type": "transfer", "number": "+3312"},
                                    END])
def test_a_fallback_ending_is_reachable_through_the_fallback_alone(ending: dict[str, Any]) -> None:
    _ok({"start": "main", "fallback": "rescue", "nodes": {"main": menu({"1": "end"}), "end": END, "rescue": ending}})


def test_unreachable_node() -> None:
    assert graph_refusal({"start": "a", "nodes": {"a": play("end"), "end": END, "lost": play("end")}}) == [
        "node 'lost' cannot be reached from the start ('a')"]


def test_a_menu_loop_without_exit() -> None:
    errors = graph_refusal({"start": "a", "nodes": {"a": menu({"1": "b"}, on_failure="a"),
                                                    "b": menu({"1": "a"}, on_failure="b")}})
    assert errors == ["node 'a' is in a loop with no way out: nothing after it ends the call",
                      "node 'b' is in a loop with no way out: nothing after it ends the call"]


def test_an_idle_loop_is_refused_even_with_a_way_out() -> None:
    errors = graph_refusal({"start": "a", "nodes": {
        "a": play("b"), "b": {"type": "hours", "open": "a", "closed": "end"}, "end": END}})
    assert errors == ["loop 'a' -> 'b' -> 'a' never waits for the caller: put a menu in it or remove it"]


def test_a_loop_through_a_menu_is_accepted() -> None:
    _ok({"start": "main", "nodes": {"main": menu({"1": "info", "0": "main", "9": "end"}), "info": play("main"),
                                    "end": END}})


def test_a_self_loop_reports_no_exit_and_idle_loop_together() -> None:
    assert graph_refusal({"start": "a", "nodes": {"a": play("a"), "end": END}}) == [
        "node 'end' cannot be reached from the start ('a')",
        "node 'a' is in a loop with no way out: nothing after it ends the call",
        "loop 'a' -> 'a' never waits for the caller: put a menu in it or remove it"]


def test_unknown_prompts_are_named_once_per_node() -> None:
    errors = graph_refusal({"start": "a", "nodes": {
        "a": {**play("m", "promo", "promo"), "variants": [{"when": {"caller": ["vip"]}, "prompts": ["promo-vip"]}]},
        "m": menu({"1": "end"}, invalid_prompt="oops"), "end": {"type": "hangup", "prompts": ["bye"]}}})
    assert errors == ["node 'a': prompt 'promo' is neither in the prompt catalog nor recorded",
                      "node 'a': prompt 'promo-vip' is neither in the prompt catalog nor recorded",
                      "node 'm': prompt 'oops' is neither in the prompt catalog nor recorded",
                      "node 'end': prompt 'bye' is neither in the prompt catalog nor recorded"]


def test_known_prompts_are_the_ones_given() -> None:
    data = {"start": "a", "nodes": {"a": play("end", "promo"), "end": END}}
    validate_flow(parse_flow(data), {"promo"})
    assert graph_refusal(data, frozenset()) == [
        "node 'a': prompt 'promo' is neither in the prompt catalog nor recorded"]


def test_several_graph_errors_are_reported_together() -> None:
    errors = graph_refusal({"start": "a", "nodes": {
        "a": play("b", "nope"), "b": {"type": "hours", "open": "a", "closed": "end"}, "end": END,
        "island": menu({"1": "island"}, on_failure="island")}})
    assert errors == [
        "node 'island' cannot be reached from the start ('a')",
        "node 'island' is in a loop with no way out: nothing after it ends the call",
        "loop 'a' -> 'b' -> 'a' never waits for the caller: put a menu in it or remove it",
        "node 'a': prompt 'nope' is neither in the prompt catalog nor recorded",
    ]


# --- size ------------------------------------------------------------------------------------------


def _chain(length: int) -> dict[str, Any]:
    nodes: dict[str, Any] = {f"n{i}": play(f"n{i + 1}") for i in range(length - 1)}
    nodes[f"n{length - 1}"] = END
    return {"start": "n0", "nodes": nodes}


def test_max_nodes_is_accepted_and_validates() -> None:
    assert len(_ok(_chain(MAX_NODES)).nodes) == MAX_NODES


def test_one_node_over_max_nodes_is_refused() -> None:
    assert refusal(_chain(MAX_NODES + 1)) == [
        f"nodes: Dictionary should have at most {MAX_NODES} items after validation, not more"]
