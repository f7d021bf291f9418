"""Where each prompt is used: the flows stored for the service numbers, and the scripts' built-in prompts.

A supervisor about to replace or roll back ``welcome`` should know which numbers will sound different. Flows
are read as stored (they were validated when saved); a number without a flow runs the default flow, so its
prompts count too. The scripts' own prompts (queue announcements, voicemail, errors) are listed in
``BUILT_IN``; a unit test reads the scripts' source so this list cannot silently fall behind.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from cti.db import Database
from cti.db.models import ServiceNumber
from cti.ivr.default_flow import DEFAULT_FLOW
from cti.ivr.engine import NEXT_OPENING_PROMPT
from cti.ivr.flow import Flow, FlowInvalid, PlayNode, node_prompts, parse_flow
from cti.ivr.models import IvrFlow

Usage = dict[str, list[dict[str, Any]]]

# prompt -> the part of the scripts that plays it (a key of the page's texts: prompts.where.<part>)
BUILT_IN: dict[str, str] = {
    "queue-hold": "queue", "queue-position": "queue", "queue-wait": "queue", "queue-minutes": "queue",
    "queue-wait-soon": "queue", "queue-offer-voicemail": "queue", "queue-goodbye": "queue",
    "vm-intro": "voicemail", "vm-review": "voicemail", "vm-saved": "voicemail", "vm-too-short": "voicemail",
    "goodbye": "voicemail", "technical-problem": "errors", "technical-difficulty": "errors",
    "unknown-number": "no-service", NEXT_OPENING_PROMPT: "hours",
}


async def prompt_usage(db: Database) -> Usage:
    """``{prompt: [{"kind": "flow", "service", "service_name", "node", "default_flow"} | {"kind": "builtin",
    "where"}]}``."""
    usage: Usage = defaultdict(list)
    async with db.session() as session:
        services = (await session.execute(
            select(ServiceNumber.number, ServiceNumber.name, IvrFlow.definition)
            .outerjoin(IvrFlow, IvrFlow.service_id == ServiceNumber.id).order_by(ServiceNumber.number))).all()
    for number, service_name, definition in services:
        flow = _flow(definition)
        if flow is None:
            continue
        where = {"kind": "flow", "service": number, "service_name": service_name, "default_flow": definition is None}
        for node_id, name in flow_prompts(flow):
            usage[name].append({**where, "node": node_id})
    for name, part in BUILT_IN.items():
        usage[name].append({"kind": "builtin", "where": part})
    return dict(usage)


def flow_prompts(flow: Flow) -> list[tuple[str, str]]:
    """(node id, prompt) for every prompt a flow may play, the next opening's announcement included."""
    found: list[tuple[str, str]] = []
    for node_id, node in flow.nodes.items():
        names = node_prompts(node) + ([NEXT_OPENING_PROMPT] if isinstance(node, PlayNode)
                                      and node.say_next_opening else [])
        found.extend((node_id, name) for name in dict.fromkeys(names))
    return found


def _flow(definition: dict[str, Any] | None) -> Flow | None:
    """None for a stored flow that no longer parses (flows are validated on save; the IVR reports it)."""
    if definition is None:
        return DEFAULT_FLOW
    try:
        return parse_flow(definition)
    except FlowInvalid:
        return None
