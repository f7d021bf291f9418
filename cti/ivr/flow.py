"""A service number's call flow: a graph of typed nodes, as an admin writes it in YAML or JSON.

The shape is parsed with pydantic (unknown keys refused, every error with its path); the graph rules
(dangling targets, unreachable nodes, loops without an exit, unknown prompts) live in
:mod:`cti.ivr.validate`. Nothing here talks to Asterisk: :mod:`cti.ivr.engine` walks the graph.

    start: hours
    nodes:
      hours:   {type: hours, open: welcome, closed: closed, holiday: holiday}
      welcome: {type: play, prompts: [welcome], next: main,
                variants: [{when: {caller: [vip]}, prompts: [welcome-vip]}]}
      main:    {type: menu, prompt: main-menu, options: {"1": support, "9": message}, on_failure: message}
      support: {type: enqueue, queue: support, skills: {network: 2}, priority: 5, overflow: message}
      message: {type: voicemail, reason: request}
      closed:  {type: play, prompts: [closed], say_next_opening: true, next: message}
      holiday: {type: play, prompts: [holiday], say_next_opening: true, next: message}
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cti.errors import InvalidInput
from cti.prompts import NAME_PATTERN

NODE_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
KEYS = frozenset("0123456789*#")
HOURS_STATES = ("open", "closed", "holiday", "override_open", "override_closed")
CALLER_CLASSES = ("known", "unknown", "vip", "anonymous", "blocked")
TRANSFER_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
MAX_RETRIES = 9
MAX_TIMEOUT_S = 30
MAX_NODES = 300


class FlowInvalid(InvalidInput):
    """A flow refused at save time; ``errors`` holds every reason, each naming the node or key."""

    code = "ivr.flow_invalid"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PromptName = Annotated[str, Field(pattern=NAME_PATTERN.pattern)]
NodeId = Annotated[str, Field(pattern=NODE_ID)]
Language = Literal["en", "fr"]


class WaitBand(_Strict):
    """True when the estimated wait of ``queue`` is known and within [min_s, max_s)."""

    queue: str = Field(min_length=1, max_length=64)
    min_s: int = Field(default=0, ge=0)
    max_s: int | None = Field(default=None, gt=0)


class Condition(_Strict):
    """Every field given must hold (AND); a list inside a field is a choice (OR). Empty: always true."""

    hours: list[Literal["open", "closed", "holiday", "override_open", "override_closed"]] = []
    caller: list[Literal["known", "unknown", "vip", "anonymous", "blocked"]] = []
    contract: list[str] = []
    number_prefix: list[Annotated[str, Field(pattern=r"^\+?[0-9]{1,15}$")]] = []
    language: list[Language] = []
    wait: WaitBand | None = None


class Variant(_Strict):
    when: Condition
    prompts: list[PromptName] = Field(min_length=1)


class PlayNode(_Strict):
    """Plays prompts (the first variant whose condition holds, else ``prompts``), then goes on."""

    type: Literal["play"]
    prompts: list[PromptName] = []
    variants: list[Variant] = []
    say_next_opening: bool = False
    next: NodeId


class _KeyReader(_Strict):
    """What every node that reads a key shares: its prompt, how long to wait, and valid keys."""

    prompt: PromptName
    timeout_s: int = Field(default=5, ge=1, le=MAX_TIMEOUT_S)

    @field_validator("options", check_fields=False)
    @classmethod
    def _keys(cls, options: dict[str, str]) -> dict[str, str]:
        bad = sorted(key for key in options if key not in KEYS)
        if bad:
            raise ValueError(f"option keys must be one of 0-9, * or #, not {', '.join(map(repr, bad))}")
        return options


class MenuNode(_KeyReader):
    """Reads one key; invalid keys and silences are retried up to ``max_retries``, then ``on_failure``."""

    type: Literal["menu"]
    options: dict[str, NodeId] = Field(min_length=1)
    max_retries: int = Field(default=2, ge=0, le=MAX_RETRIES)
    invalid_prompt: PromptName | None = "invalid-input"
    no_input_prompt: PromptName | None = "no-input"
    on_failure: NodeId


class LanguageNode(_KeyReader):
    """The caller picks a language by key; on failure the service's language stays."""

    type: Literal["language"]
    options: dict[str, Language] = Field(min_length=1)
    max_retries: int = Field(default=1, ge=0, le=MAX_RETRIES)
    next: NodeId


class HoursNode(_Strict):
    """Branches on the service's opening hours at the call's instant; overrides default to open/closed."""

    type: Literal["hours"]
    open: NodeId
    closed: NodeId
    holiday: NodeId | None = None
    override_open: NodeId | None = None
    override_closed: NodeId | None = None


class Rule(_Strict):
    when: Condition
    next: NodeId


class CallerNode(_Strict):
    """Branches on who calls (known, VIP, contract, blocked, anonymous, number prefix): first match wins."""

    type: Literal["caller"]
    rules: list[Rule] = Field(min_length=1)
    default: NodeId


class EnqueueNode(_Strict):
    """Hands the caller to the ACD; if it cannot take the call, ``overflow`` runs."""

    type: Literal["enqueue"]
    queue: str = Field(min_length=1, max_length=64)
    skills: dict[str, Annotated[int, Field(ge=1, le=10)]] = {}
    priority: int = Field(default=0, ge=0, le=100)
    overflow: NodeId


class VoicemailNode(_Strict):
    type: Literal["voicemail"]
    reason: Literal["closed", "overflow", "request"] = "request"


class TransferNode(_Strict):
    type: Literal["transfer"]
    number: Annotated[str, Field(pattern=TRANSFER_NUMBER.pattern)]
    prompts: list[PromptName] = []


class HangupNode(_Strict):
    type: Literal["hangup"]
    prompts: list[PromptName] = []


Node = Annotated[
    PlayNode | MenuNode | LanguageNode | HoursNode | CallerNode | EnqueueNode | VoicemailNode
    | TransferNode | HangupNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("play", "menu", "language", "hours", "caller", "enqueue", "voicemail", "transfer", "hangup")
TERMINAL_TYPES = ("enqueue", "voicemail", "transfer", "hangup")
INPUT_TYPES = ("menu", "language")


class Flow(_Strict):
    """``fallback``: the ending (voicemail, transfer or hang-up node) taken after a technical error;
    without one the caller is offered voicemail."""

    start: NodeId
    fallback: NodeId | None = None
    nodes: dict[Annotated[str, Field(pattern=NODE_ID)], Node] = Field(min_length=1, max_length=MAX_NODES)


def parse_flow(data: Any) -> Flow:
    """The typed flow, or FlowInvalid listing every shape error with its path (``nodes.main.timeout_s: ...``)."""
    try:
        return Flow.model_validate(data)
    except ValidationError as exc:
        raise FlowInvalid([_describe(error) for error in exc.errors()]) from None


def dump_flow(flow: Flow) -> dict[str, Any]:
    """The admin's shape back, without defaults they did not write being lost or invented."""
    data = flow.model_dump(mode="json", exclude_defaults=True)
    data["nodes"] = {node_id: {"type": node["type"], **node} for node_id, node in data["nodes"].items()}
    return data


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in _without_union_tag(tuple(error["loc"])))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location or 'flow'}: {message}"


def _without_union_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic names the chosen union member after the node id (``nodes.main.menu.prompt``): drop it there
    only, since a node id or a field may have the same name (``nodes.hours.hours.closed``, ``when.caller``)."""
    if len(loc) > 2 and loc[0] == "nodes" and loc[2] in NODE_TYPES:
        return (*loc[:2], *loc[3:])
    return loc


def node_targets(node: Any) -> list[tuple[str, str]]:
    """Every (label, target node id) a node can go to, for validation and the supervision screen."""
    match node:
        case PlayNode() | LanguageNode():
            return [("next", node.next)]
        case MenuNode():
            return [(f"key {key}", target) for key, target in node.options.items()] + [
                ("on_failure", node.on_failure)]
        case HoursNode():
            return [(state, getattr(node, state)) for state in HOURS_STATES if getattr(node, state)]
        case CallerNode():
            return [(f"rule {index + 1}", rule.next) for index, rule in enumerate(node.rules)] + [
                ("default", node.default)]
        case EnqueueNode():
            return [("overflow", node.overflow)]
    return []


def node_prompts(node: Any) -> list[str]:
    """Every prompt a node may play."""
    match node:
        case PlayNode():
            return [*node.prompts, *(name for variant in node.variants for name in variant.prompts)]
        case MenuNode():
            return [name for name in (node.prompt, node.invalid_prompt, node.no_input_prompt) if name]
        case LanguageNode():
            return [node.prompt]
        case TransferNode() | HangupNode():
            return list(node.prompts)
    return []

