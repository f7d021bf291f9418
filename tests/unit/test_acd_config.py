"""The ACD configuration's rules: agents, queues and whole documents, each refusal with its exact reason;
endpoints made safe for Dial(); the conversion to what routing takes; references between queues."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from cti.acd.config import (
    AcdConfigInvalid,
    AgentConfig,
    EndpointInvalid,
    QueueConfig,
    RoutingStepConfig,
    agent_model,
    check_references,
    dump_agent,
    dump_document,
    dump_queue,
    normalise_endpoint,
    overflow_queue,
    parse_agent,
    parse_document,
    parse_queue,
    queue_spec,
    references_to,
)
from cti.acd.model import Agent, AgentState, QueueSpec, RoutingStep, check_agent, check_queue
from cti.errors import CtiError
from cti.resources import resource_path
from tests.support.acd import ALICE
from tests.support.acd import BILLING_DOC as BILLING
from tests.support.acd import SUPPORT_DOC as SUPPORT

NOT_A_NAME = "is not a name: a lowercase letter, then up to 31 lowercase letters, digits, '_', '.' or '-'"
FORMS = "write PJSIP/<name>, Local/<exten>@<context> or a bare endpoint name"


def queues(*documents: dict[str, Any]) -> list[QueueConfig]:
    return [parse_queue(document) for document in documents]


def refusals(parse: Any, document: Any) -> list[str]:
    with pytest.raises(AcdConfigInvalid) as caught:
        parse(document)
    assert caught.value.code == "acd.config_invalid"
    return caught.value.errors


# --- endpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PJSIP/agent1", "PJSIP/agent1"),
        ("pjsip/agent1", "PJSIP/agent1"),
        ("agent1", "PJSIP/agent1"),
        ("  agent-1.b+2 ", "PJSIP/agent-1.b+2"),
        ("Local/chloe@cti-agent-sim", "Local/chloe@cti-agent-sim"),
        ("LOCAL/*21#@from-internal", "Local/*21#@from-internal"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_endpoints_are_normalised(text: str, expected: str) -> None:
    assert normalise_endpoint(text) == expected


@pytest.mark.parametrize(
    ("text", "unsafe"),
    [
        ("PJSIP/a,b", "(',' not allowed)"),  # a second Dial() argument: timeout, options
        ("PJSIP/a&PJSIP/b", "('&' not allowed)"),  # a second target rung in parallel
        ("PJSIP/a b", "(' ' not allowed)"),
        ("PJSIP/${EXTEN}", "('$' '{' '}' not allowed)"),  # a dialplan expression
        ("PJSIP/a)", "(')' not allowed)"),
        ("PJSIP/a|b", "('|' not allowed)"),
        ("PJSIP/a;b", "(';' not allowed)"),
        ("PJSIP/a\nb", "('\\n' not allowed)"),
        ("SIP/agent1", ""),
        ("IAX2/agent1", ""),
        ("PJSIP/", ""),
        ("PJSIP/a/b", ""),
        ("PJSIP/-a", ""),
        ("Local/100", ""),  # no context
        ("Local/@ctx", ""),
        ("Local/100@ctx/n", ""),  # channel options are not for admins to add
        ("x" * 65, ""),
    ],
)
def test_unsafe_or_unknown_endpoints_are_refused(text: str, unsafe: str) -> None:
    with pytest.raises(EndpointInvalid) as caught:
        normalise_endpoint(text)
    reason = f" {unsafe}" if unsafe else ""
    assert str(caught.value) == f"{text!r} is not a dial target{reason}: {FORMS}"
    assert isinstance(caught.value, CtiError) and caught.value.code == "acd.endpoint_invalid"


# --- agents ----------------------------------------------------------------------------------------


def test_an_agent_parses_and_dumps_back() -> None:
    agent = parse_agent({**ALICE, "endpoint": "agent1"})
    assert agent == AgentConfig(
        id="alice", name="Alice", team="support", skills={"network": 5, "lang-fr": 5}, endpoint="PJSIP/agent1"
    )
    assert dump_agent(agent) == ALICE
    assert parse_agent({"id": "bob", "name": "Bob"}) == AgentConfig(id="bob", name="Bob")


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"id": "Alice"}, [f"id: 'Alice' {NOT_A_NAME}"]),
        ({"id": "9lives"}, [f"id: '9lives' {NOT_A_NAME}"]),
        ({"id": "a" * 33}, [f"id: '{'a' * 33}' {NOT_A_NAME}"]),
        ({"name": ""}, ["name: String should have at least 1 character"]),
        ({"name": "x" * 81}, ["name: String should have at most 80 characters"]),
        ({"team": 3}, ["team: Input should be a valid string"]),
        ({"skills": {"network": 11}}, ["skills.network: Input should be less than or equal to 10"]),
        ({"skills": {"network": -1}}, ["skills.network: Input should be greater than or equal to 0"]),
        ({"skills": {"network": True}}, ["skills.network: Input should be a valid integer"]),
        ({"skills": {"network": "5"}}, ["skills.network: Input should be a valid integer"]),
        ({"skills": {"Lang FR": 5}}, [f"skills: 'Lang FR' {NOT_A_NAME}"]),
        ({"endpoint": "PJSIP/a,b"}, [f"endpoint: 'PJSIP/a,b' is not a dial target (',' not allowed): {FORMS}"]),
        (
            {"endpoint": "PJSIP/a&PJSIP/b"},
            [f"endpoint: 'PJSIP/a&PJSIP/b' is not a dial target ('&' not allowed): {FORMS}"],
        ),
        ({"phone": "100"}, ["phone: Extra inputs are not permitted"]),
    ],
)
def test_refused_agents(change: dict[str, Any], errors: list[str]) -> None:
    assert refusals(parse_agent, {**ALICE, **change}) == errors


def test_every_reason_at_once_and_missing_fields() -> None:
    assert refusals(parse_agent, {"id": "Bad", "skills": {"x": 99}}) == [
        f"id: 'Bad' {NOT_A_NAME}",
        "name: Field required",
        "skills.x: Input should be less than or equal to 10",
    ]
    assert refusals(parse_agent, ["alice"]) == [
        "document: Input should be a valid dictionary or instance of AgentConfig"
    ]


# --- queues ----------------------------------------------------------------------------------------


def test_a_queue_has_safe_defaults_and_dumps_every_setting() -> None:
    queue = parse_queue({"name": "support"})
    assert dump_queue(queue) == {
        "name": "support",
        "label": "",
        "skills": {},
        "steps": [],
        "max_wait_s": None,
        "overflow": "voicemail",
        "wrap_up_s": 15,
        "ring_timeout_s": 20,
        "max_misses": 3,
        "announce_every_s": 30,
        "announce_position": True,
        "announce_wait": True,
        "offer_voicemail": True,
        "preferred_window_s": 60,
        "moh_class": "default",
        "service_level_s": 20,
    }
    full = parse_queue(SUPPORT)
    assert parse_queue(dump_queue(full)) == full
    assert dump_queue(full)["steps"][1] == {
        "after_s": 120.0,
        "level_delta": 0,
        "levels": {},
        "drop": [],
        "borrow": ["billing"],
    }


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"name": "Support"}, [f"name: 'Support' {NOT_A_NAME}"]),
        ({"label": "x" * 81}, ["label: String should have at most 80 characters"]),
        ({"skills": {"software": 11}}, ["skills.software: Input should be less than or equal to 10"]),
        ({"steps": [{"after_s": 0}]}, ["steps.0.after_s: Input should be greater than 0"]),
        ({"steps": [{"after_s": float("inf")}]}, ["steps.0.after_s: Input should be a finite number"]),
        ({"steps": [{"after_s": "60"}]}, ["steps.0.after_s: Input should be a valid number"]),
        (
            {"steps": [{"after_s": 60, "level_delta": -1}]},
            ["steps.0.level_delta: Input should be greater than or equal to 0"],
        ),
        (
            {"steps": [{"after_s": 60, "levels": {"software": 12}}]},
            ["steps.0.levels.software: Input should be less than or equal to 10"],
        ),
        ({"steps": [{"after_s": 60, "drop": ["a", "a"]}]}, ["steps.0.drop: listed more than once: 'a'"]),
        (
            {"steps": [{"after_s": 60, "borrow": ["billing", "billing"]}]},
            ["steps.0.borrow: listed more than once: 'billing'"],
        ),
        ({"steps": [{"after_s": 60, "relax": True}]}, ["steps.0.relax: Extra inputs are not permitted"]),
        ({"steps": [{"after_s": 60}] * 21}, ["steps: List should have at most 20 items after validation, not 21"]),
        (
            {"steps": [{"after_s": 120}, {"after_s": 60}]},
            ["steps.1.after_s: 60 is not after the previous step's (120): steps come in the order they apply"],
        ),
        (
            {"steps": [{"after_s": 60}, {"after_s": 60}]},
            ["steps.1.after_s: 60 is not after the previous step's (60): steps come in the order they apply"],
        ),
        (
            {"steps": [{"after_s": 60, "borrow": ["support"]}]},
            ["steps.0.borrow: a queue cannot borrow from itself ('support')"],
        ),
        (
            {"steps": [{"after_s": 300}]},
            ["steps.0.after_s: 300 is not before max_wait_s (300): calls overflow before this step"],
        ),
        ({"max_wait_s": 0}, ["max_wait_s: Input should be greater than 0"]),
        (
            {"overflow": "queue:Billing"},
            ["overflow: 'queue:Billing' is not an overflow: write voicemail or queue:<queue name>"],
        ),
        ({"overflow": "hangup"}, ["overflow: 'hangup' is not an overflow: write voicemail or queue:<queue name>"]),
        ({"wrap_up_s": 3601}, ["wrap_up_s: Input should be less than or equal to 3600"]),
        ({"wrap_up_s": 1.5}, ["wrap_up_s: Input should be a valid integer"]),
        ({"ring_timeout_s": 4}, ["ring_timeout_s: Input should be greater than or equal to 5"]),
        ({"ring_timeout_s": 121}, ["ring_timeout_s: Input should be less than or equal to 120"]),
        ({"max_misses": 0}, ["max_misses: Input should be greater than or equal to 1"]),
        ({"max_misses": 21}, ["max_misses: Input should be less than or equal to 20"]),
        ({"announce_every_s": 9}, ["announce_every_s: Input should be greater than or equal to 10"]),
        ({"announce_every_s": 601}, ["announce_every_s: Input should be less than or equal to 600"]),
        ({"announce_position": "yes"}, ["announce_position: Input should be a valid boolean"]),
        ({"announce_wait": 1}, ["announce_wait: Input should be a valid boolean"]),
        ({"offer_voicemail": None}, ["offer_voicemail: Input should be a valid boolean"]),
        ({"preferred_window_s": -1}, ["preferred_window_s: Input should be greater than or equal to 0"]),
        ({"moh_class": "My Music"}, [f"moh_class: 'My Music' {NOT_A_NAME}"]),
        ({"service_level_s": 0}, ["service_level_s: Input should be greater than or equal to 1"]),
        ({"service_level_s": 601}, ["service_level_s: Input should be less than or equal to 600"]),
        ({"priority": 3}, ["priority: Extra inputs are not permitted"]),
    ],
)
def test_refused_queues(change: dict[str, Any], errors: list[str]) -> None:
    assert refusals(parse_queue, {**SUPPORT, **change}) == errors


def test_every_rule_across_a_queues_fields_is_reported_with_its_path() -> None:
    document = {
        "name": "support",
        "max_wait_s": 100,
        "steps": [{"after_s": 90}, {"after_s": 80, "borrow": ["support"]}, {"after_s": 120}],
    }
    assert refusals(parse_queue, document) == [
        "steps.1.after_s: 80 is not after the previous step's (90): steps come in the order they apply",
        "steps.1.borrow: a queue cannot borrow from itself ('support')",
        "steps.2.after_s: 120 is not before max_wait_s (100): calls overflow before this step",
    ]


def test_the_models_refuse_directly_too() -> None:
    """Built in code rather than parsed, the same rules hold (pydantic's own error)."""
    with pytest.raises(ValueError, match="not after the previous step"):
        QueueConfig(name="q", steps=[RoutingStepConfig(after_s=9), RoutingStepConfig(after_s=8)])
    with pytest.raises(ValueError, match="not a dial target"):
        AgentConfig(id="a", name="A", endpoint="PJSIP/a&PJSIP/b")


# --- conversion to the routing model ---------------------------------------------------------------


def test_a_queue_becomes_a_spec_routing_accepts() -> None:
    spec = queue_spec(
        parse_queue(
            {
                **SUPPORT,
                "overflow": "queue:billing",
                "steps": [
                    {"after_s": 60, "level_delta": 1, "levels": {"lang-fr": 2}, "drop": ["software"]},
                    {"after_s": 120, "borrow": ["billing"]},
                ],
            }
        )
    )
    assert spec == QueueSpec(
        name="support",
        required={"software": 1},
        max_wait_s=300,
        overflow_target="queue:billing",
        steps=(
            RoutingStep(after_s=60, level_delta=1, levels={"lang-fr": 2}, drop=frozenset({"software"})),
            RoutingStep(after_s=120, borrow=("billing",)),
        ),
    )
    check_queue(spec)
    assert queue_spec(parse_queue({"name": "plain"})).overflow_target == "voicemail"


def test_an_agent_becomes_a_logged_out_routing_agent() -> None:
    agent = agent_model(parse_agent(ALICE))
    assert agent == Agent(id="alice", skills={"network": 5, "lang-fr": 5}, team="support")
    assert agent.state is AgentState.LOGGED_OUT
    check_agent(agent)


def test_the_demo_configuration_converts() -> None:
    document = parse_document(yaml.safe_load(resource_path("demo/acd.yaml").read_text(encoding="utf-8")))
    for queue in document.queues:
        check_queue(queue_spec(queue))
    for agent in document.agents:
        check_agent(agent_model(agent))
    assert [agent.endpoint for agent in document.agents] == [
        "PJSIP/agent1",
        "PJSIP/agent2",
        "Local/chloe@cti-agent-sim",
    ]


def test_the_demo_services_enqueue_into_the_demo_queues() -> None:
    names = {
        queue.name
        for queue in parse_document(yaml.safe_load(resource_path("demo/acd.yaml").read_text(encoding="utf-8"))).queues
    }
    enqueued = set()
    for path in sorted(resource_path("demo/services").glob("*.yaml")):
        nodes = yaml.safe_load(path.read_text(encoding="utf-8"))["flow"]["nodes"]
        enqueued |= {node["queue"] for node in nodes.values() if node["type"] == "enqueue"}
    assert enqueued == names == {"support", "billing"}


# --- references between queues --------------------------------------------------------------------


def test_references_that_hold() -> None:
    assert check_references(queues(SUPPORT, BILLING)) == []
    assert check_references(queues({**SUPPORT, "overflow": "queue:billing"}, BILLING)) == []
    assert overflow_queue(parse_queue({**SUPPORT, "overflow": "queue:billing"})) == "billing"
    assert overflow_queue(parse_queue(SUPPORT)) is None


@pytest.mark.parametrize(
    ("documents", "errors"),
    [
        ([SUPPORT], ["queue 'support': steps.1.borrow: no queue 'billing'"]),
        ([{**BILLING, "overflow": "queue:nowhere"}], ["queue 'billing': overflow: no queue 'nowhere'"]),
        ([{**BILLING, "overflow": "queue:billing"}], ["queue 'billing': overflow: a queue cannot overflow to itself"]),
        (
            [{**SUPPORT, "overflow": "queue:billing"}, {**BILLING, "overflow": "queue:support"}],
            ["queue 'billing': overflow: the chain billing -> support -> billing loops"],
        ),
        (
            [
                {"name": "c", "overflow": "queue:a"},
                {"name": "b", "overflow": "queue:c"},
                {"name": "a", "overflow": "queue:b"},
                {"name": "d", "overflow": "queue:a"},
            ],  # d leads into the loop without being part of it
            ["queue 'a': overflow: the chain a -> b -> c -> a loops"],
        ),
        (
            [
                {"name": "a", "overflow": "queue:b"},
                {"name": "b", "overflow": "queue:a"},
                {"name": "x", "overflow": "queue:y"},
                {"name": "y", "overflow": "queue:x"},
            ],
            ["queue 'a': overflow: the chain a -> b -> a loops", "queue 'x': overflow: the chain x -> y -> x loops"],
        ),
    ],
)
def test_references_refused(documents: list[dict[str, Any]], errors: list[str]) -> None:
    assert check_references(queues(*documents)) == errors


def test_what_refers_to_a_queue() -> None:
    configured = queues({**SUPPORT, "overflow": "queue:billing"}, BILLING)
    assert references_to("billing", configured) == [
        "queue 'support' borrows from it (steps.1.borrow)",
        "queue 'support' overflows to it (overflow)",
    ]
    assert references_to("support", configured) == []


# --- whole documents -------------------------------------------------------------------------------


def test_a_document_round_trips() -> None:
    document = parse_document({"agents": [ALICE], "queues": [SUPPORT, BILLING]})
    assert [agent.id for agent in document.agents] == ["alice"]
    assert parse_document(dump_document(document)) == document
    assert parse_document({"agents": [], "queues": []}).queues == ()


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        (None, ["document: expected a mapping with agents and queues"]),
        (["alice"], ["document: expected a mapping with agents and queues"]),
        ({"agents": []}, ["queues: missing (the document replaces the whole configuration: write [] for none)"]),
        (
            {"agents": {"alice": ALICE}, "queues": [], "teams": []},
            ["teams: unknown key (expected agents, queues)", "agents: expected a list"],
        ),
        (
            {
                "agents": [ALICE, {**ALICE, "name": "Alice again"}, {"id": "bob", "name": "Bob", "skills": {"x": 11}}],
                "queues": [SUPPORT, {**BILLING, "wrap_up_s": -1}, {"name": "support"}],
            },
            [
                "agents.2.skills.x: Input should be less than or equal to 10",
                "queues.1.wrap_up_s: Input should be greater than or equal to 0",
                "agents.1.id: 'alice' is already agents.0",
                "queues.2.name: 'support' is already queues.0",
            ],
        ),  # billing refused: not reported missing as well
        (
            {"agents": [], "queues": [SUPPORT, {**BILLING, "name": "billing2"}]},
            ["queue 'support': steps.1.borrow: no queue 'billing'"],
        ),
    ],
)
def test_refused_documents_list_every_reason(document: Any, errors: list[str]) -> None:
    assert refusals(parse_document, document) == errors
