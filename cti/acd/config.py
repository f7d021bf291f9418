"""The ACD as an admin configures it: agents and queues, written in YAML or JSON and checked at save time.

Shapes are parsed with pydantic (unknown keys refused, strict types so ``true`` is not a level, every error
with its path); what needs every queue at once (borrowing from or overflowing to a queue that does not
exist, overflow chains that loop) is :func:`check_references`. ``queue_spec`` and ``agent_model`` turn a
checked configuration into what routing (:mod:`cti.acd.model`) uses.

    agents:
      - {id: alice, name: Alice Martin, team: support, skills: {network: 5, lang-fr: 5}, endpoint: PJSIP/agent1}
    queues:
      - name: support
        skills: {software: 1}
        steps: [{after_s: 60, level_delta: 1}, {after_s: 120, borrow: [billing]}]
        max_wait_s: 300
        overflow: voicemail
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from cti.acd.model import Agent, QueueSpec, RoutingStep
from cti.errors import CtiError, InvalidInput

SLUG = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
LOCAL_TARGET = re.compile(r"[A-Za-z0-9+*#][A-Za-z0-9_.+*#-]{0,39}@[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
ENDPOINT_FORMS = "PJSIP/<name>, Local/<exten>@<context> or a bare endpoint name"
ENDPOINT_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-*#@/")
MAX_ENDPOINT = 128  # "Local/" + a 40-character extension + "@" + an 80-character context fits
MAX_LEVEL = 10
MAX_STEPS = 20
VOICEMAIL = "voicemail"
QUEUE_PREFIX = "queue:"
DOCUMENT_KEYS = ("agents", "queues")
QUEUE_RULES = "acd_queue_rules"
T = TypeVar("T")


class AcdConfigInvalid(InvalidInput):
    """An agent, a queue or a whole configuration refused at save time; ``errors`` holds every reason."""

    code = "acd.config_invalid"


class EndpointInvalid(CtiError, ValueError):
    """Also a ValueError, so an agent's ``endpoint`` field reports it at its path like any other refusal."""

    code = "acd.endpoint_invalid"


def normalise_endpoint(text: str) -> str:
    """The agent's phone as a Dial() target: ``PJSIP/<name>``, ``Local/<exten>@<context>``, or a bare name
    (made ``PJSIP/<name>``); "" stays "" (no usual phone). The text ends up in a Dial() argument, so
    anything that could add a target or an option there (``,``, ``&``, spaces, ``$``...) is refused."""
    value = text.strip()
    if not value:
        return ""
    technology, slash, rest = value.partition("/")
    if not slash:
        technology, rest = "PJSIP", value
    unsafe = sorted(set(value) - ENDPOINT_CHARACTERS)
    reason = f" ({' '.join(map(repr, unsafe))} not allowed)" if unsafe else ""
    if technology.lower() == "pjsip" and ENDPOINT_NAME.fullmatch(rest):
        return f"PJSIP/{rest}"
    if technology.lower() == "local" and LOCAL_TARGET.fullmatch(rest):
        return f"Local/{rest}"
    raise EndpointInvalid(f"{text!r} is not a dial target{reason}: write {ENDPOINT_FORMS}")


def _slug(value: str) -> str:
    if not SLUG.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a name: a lowercase letter, then up to 31 lowercase letters, digits, '_', '.' or '-'"
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Level = Annotated[int, Field(ge=0, le=MAX_LEVEL)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _once(values: list[str]) -> list[str]:
    twice = sorted({value for value in values if values.count(value) > 1})
    if twice:
        raise ValueError(f"listed more than once: {', '.join(map(repr, twice))}")
    return values


class AgentConfig(_Strict):
    """An agent: skills are levels 0..10 (languages are skills too: ``lang-fr: 5``); ``endpoint`` is the
    phone the agent usually logs in with (a login may name another)."""

    id: Slug
    name: str = Field(min_length=1, max_length=80)
    team: str = Field(default="", max_length=80)
    skills: dict[Slug, Level] = {}
    endpoint: str = ""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return normalise_endpoint(value)


class RoutingStepConfig(_Strict):
    """See :class:`cti.acd.model.RoutingStep`: once a call has waited ``after_s``, levels are lowered by
    ``level_delta``, then ``levels`` set, ``drop`` removed, and the queues in ``borrow`` may lend agents."""

    after_s: float = Field(gt=0)
    level_delta: int = Field(default=0, ge=0, le=MAX_LEVEL)
    levels: dict[Slug, Level] = {}
    drop: Annotated[list[Slug], AfterValidator(_once)] = []
    borrow: Annotated[list[Slug], AfterValidator(_once)] = []


class QueueConfig(_Strict):
    """A queue: base skills, relaxation steps, when and where calls overflow, and what callers hear."""

    name: Slug
    label: str = Field(default="", max_length=80)
    skills: dict[Slug, Level] = {}
    steps: list[RoutingStepConfig] = Field(default=[], max_length=MAX_STEPS)
    max_wait_s: float | None = Field(default=None, gt=0)
    overflow: str = VOICEMAIL  # "voicemail" or "queue:<name>"
    wrap_up_s: int = Field(default=15, ge=0, le=3600)
    ring_timeout_s: int = Field(default=20, ge=5, le=120)
    max_misses: int = Field(default=3, ge=1, le=20)  # rings unanswered in a row before the agent is paused
    announce_every_s: int = Field(default=30, ge=10, le=600)
    announce_position: bool = True
    announce_wait: bool = True
    offer_voicemail: bool = True  # * during the announcements leaves a message
    preferred_window_s: int = Field(default=60, ge=0, le=3600)
    moh_class: Slug = "default"
    service_level_s: int = Field(default=20, ge=1, le=600)  # answered within this counts for the service level

    @field_validator("overflow")
    @classmethod
    def _overflow(cls, value: str) -> str:
        if value != VOICEMAIL and not (value.startswith(QUEUE_PREFIX) and SLUG.fullmatch(value[len(QUEUE_PREFIX) :])):
            raise ValueError(f"{value!r} is not an overflow: write {VOICEMAIL} or {QUEUE_PREFIX}<queue name>")
        return value

    @model_validator(mode="after")
    def _steps(self) -> QueueConfig:
        """Rules across fields, each reported with its own path (see ``_describe``)."""
        problems: list[str] = []
        previous = 0.0
        for index, step in enumerate(self.steps):
            if index and step.after_s <= previous:
                problems.append(
                    f"steps.{index}.after_s: {step.after_s:g} is not after the previous step's "
                    f"({previous:g}): steps come in the order they apply"
                )
            if self.max_wait_s is not None and step.after_s >= self.max_wait_s:
                problems.append(
                    f"steps.{index}.after_s: {step.after_s:g} is not before max_wait_s "
                    f"({self.max_wait_s:g}): calls overflow before this step"
                )
            if self.name in step.borrow:
                problems.append(f"steps.{index}.borrow: a queue cannot borrow from itself ({self.name!r})")
            previous = step.after_s
        if problems:
            raise PydanticCustomError(QUEUE_RULES, "{problems}", {"problems": problems})
        return self


@dataclass(frozen=True)
class AcdDocument:
    """The whole configuration, as imported and exported (``{agents: [...], queues: [...]}``)."""

    agents: tuple[AgentConfig, ...]
    queues: tuple[QueueConfig, ...]


# --- conversions ----------------------------------------------------------------------------------


def queue_spec(config: QueueConfig) -> QueueSpec:
    steps = tuple(
        RoutingStep(
            after_s=step.after_s,
            level_delta=step.level_delta,
            levels=dict(step.levels),
            drop=frozenset(step.drop),
            borrow=tuple(step.borrow),
        )
        for step in config.steps
    )
    return QueueSpec(
        name=config.name,
        required=dict(config.skills),
        steps=steps,
        max_wait_s=config.max_wait_s,
        overflow_target=config.overflow,
    )


def agent_model(config: AgentConfig) -> Agent:
    """A logged-out agent: the live state comes from the stored statuses, not from the configuration."""
    return Agent(id=config.id, skills=dict(config.skills), team=config.team)


def overflow_queue(config: QueueConfig) -> str | None:
    """The queue calls overflow to, or None when they go to voicemail."""
    return config.overflow.removeprefix(QUEUE_PREFIX) if config.overflow.startswith(QUEUE_PREFIX) else None


# --- parsing --------------------------------------------------------------------------------------


def parse_agent(data: Any) -> AgentConfig:
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise AcdConfigInvalid(_describe_all(exc)) from None


def parse_queue(data: Any) -> QueueConfig:
    """The queue on its own; its references to other queues are :func:`check_references`' job."""
    try:
        return QueueConfig.model_validate(data)
    except ValidationError as exc:
        raise AcdConfigInvalid(_describe_all(exc)) from None


def dump_agent(config: AgentConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def dump_queue(config: QueueConfig) -> dict[str, Any]:
    """Every setting, defaults included: what is in effect, in the form that imports back."""
    return config.model_dump(mode="json")


def parse_document(data: Any) -> AcdDocument:
    """Every agent and queue checked, then the references between queues; AcdConfigInvalid lists every
    reason with its path (``queues.1.steps.0.after_s: ...``)."""
    errors = _document_shape(data)
    if errors:
        raise AcdConfigInvalid(errors)
    agents = _parse_items(data["agents"], "agents", parse_agent, errors)
    queues = _parse_items(data["queues"], "queues", parse_queue, errors)
    errors += _duplicates("agents", "id", [agent.id for agent in agents.values()], list(agents))
    errors += _duplicates("queues", "name", [queue.name for queue in queues.values()], list(queues))
    if len(queues) == len(data["queues"]):  # else a refused queue would also be reported missing
        errors += check_references(list(queues.values()))
    if errors:
        raise AcdConfigInvalid(errors)
    return AcdDocument(tuple(agents.values()), tuple(queues.values()))


def dump_document(document: AcdDocument) -> dict[str, Any]:
    return {
        "agents": [dump_agent(agent) for agent in document.agents],
        "queues": [dump_queue(queue) for queue in document.queues],
    }


def _document_shape(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["document: expected a mapping with agents and queues"]
    errors = [f"{key}: unknown key (expected {', '.join(DOCUMENT_KEYS)})" for key in data if key not in DOCUMENT_KEYS]
    for key in DOCUMENT_KEYS:
        if key not in data:
            errors.append(f"{key}: missing (the document replaces the whole configuration: write [] for none)")
        elif not isinstance(data[key], list):
            errors.append(f"{key}: expected a list")
    return errors


def _parse_items(items: list[Any], where: str, parse: Callable[[Any], T], errors: list[str]) -> dict[int, T]:
    """Parsed items by their index in the document; each refused item's reasons are added to ``errors``."""
    parsed: dict[int, T] = {}
    for index, item in enumerate(items):
        try:
            parsed[index] = parse(item)
        except AcdConfigInvalid as exc:
            errors += [f"{where}.{index}.{reason}" for reason in exc.errors]
    return parsed


def _duplicates(where: str, field: str, keys: list[str], indexes: list[int]) -> list[str]:
    first: dict[str, int] = {}
    errors = []
    for key, index in zip(keys, indexes, strict=True):
        if key in first:
            errors.append(f"{where}.{index}.{field}: {key!r} is already {where}.{first[key]}")
        first.setdefault(key, index)
    return errors


def _describe_all(exc: ValidationError) -> list[str]:
    return [reason for error in exc.errors() for reason in _describe(error)]


def _describe(error: Any) -> list[str]:
    """``path: message``; a dict key's own error names the dict (the key is in the message), and the
    queue's cross-field rules come as one error holding every problem, each with its path already."""
    loc = tuple(str(part) for part in error["loc"])
    if loc[-1:] == ("[key]",):
        loc = loc[:-2]
    prefix = ".".join(loc)
    if error["type"] == QUEUE_RULES:
        return [f"{prefix}.{problem}" if prefix else problem for problem in error["ctx"]["problems"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    return [f"{prefix or 'document'}: {message}"]


# --- references between queues --------------------------------------------------------------------


def check_references(queues: Sequence[QueueConfig]) -> list[str]:
    """What only the set of queues can tell: borrowing from or overflowing to a queue that does not exist,
    an overflow to the queue itself, and overflow chains that loop (a call would be passed on forever)."""
    known = {queue.name for queue in queues}
    errors: list[str] = []
    for queue in queues:
        for index, step in enumerate(queue.steps):
            errors += [
                f"queue {queue.name!r}: steps.{index}.borrow: no queue {other!r}"
                for other in step.borrow
                if other not in known
            ]
        target = overflow_queue(queue)
        if target == queue.name:
            errors.append(f"queue {queue.name!r}: overflow: a queue cannot overflow to itself")
        elif target is not None and target not in known:
            errors.append(f"queue {queue.name!r}: overflow: no queue {target!r}")
    return errors + _overflow_loops(queues)


def _overflow_loops(queues: Sequence[QueueConfig]) -> list[str]:
    """Each overflow queue has one target, so the chains form a functional graph: every loop is found
    once by walking from each queue until a queue already walked."""
    target = {queue.name: to for queue in queues if (to := overflow_queue(queue)) and to != queue.name}
    walked: set[str] = set()
    errors = []
    for start in sorted(target):
        path: list[str] = []
        node: str | None = start
        while node is not None and node not in walked and node not in path:
            path.append(node)
            node = target.get(node)
        if node is not None and node in path:
            loop = path[path.index(node) :]
            first = loop.index(min(loop))
            loop = loop[first:] + loop[:first]
            errors.append(f"queue {loop[0]!r}: overflow: the chain {' -> '.join([*loop, loop[0]])} loops")
        walked.update(path)
    return errors


def references_to(name: str, queues: Sequence[QueueConfig]) -> list[str]:
    """Which other queues borrow from or overflow to ``name`` (it cannot be removed while they do)."""
    found: list[str] = []
    for queue in queues:
        if queue.name == name:
            continue
        found += [
            f"queue {queue.name!r} borrows from it (steps.{index}.borrow)"
            for index, step in enumerate(queue.steps)
            if name in step.borrow
        ]
        if overflow_queue(queue) == name:
            found.append(f"queue {queue.name!r} overflows to it (overflow)")
    return found
