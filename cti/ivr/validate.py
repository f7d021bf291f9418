"""The graph rules a flow must pass before it is saved: the caller can never get lost in it.

Refused, each with the node named: a start or target that does not exist, a node the start cannot
reach, a node from which no ending (enqueue, voicemail, transfer, hang-up) can be reached, a loop that
never waits for the caller (it would spin forever), and prompts that exist neither in the catalog nor
as recorded files.
"""

from __future__ import annotations

from collections.abc import Collection

from cti.ivr.flow import INPUT_TYPES, TERMINAL_TYPES, Flow, FlowInvalid, node_prompts, node_targets


def validate_flow(flow: Flow, known_prompts: Collection[str]) -> None:
    """Raises FlowInvalid with every reason found; returns quietly for a flow that is safe to run."""
    errors = _dangling(flow)
    if errors:  # the other checks walk the graph and would only repeat these
        raise FlowInvalid(errors)
    errors += _unreachable(flow) + _without_exit(flow) + _idle_loops(flow) + _unknown_prompts(flow, known_prompts)
    if errors:
        raise FlowInvalid(errors)


def _dangling(flow: Flow) -> list[str]:
    errors = [] if flow.start in flow.nodes else [f"start: node {flow.start!r} does not exist"]
    if flow.fallback is not None:
        fallback = flow.nodes.get(flow.fallback)
        if fallback is None:
            errors.append(f"fallback: node {flow.fallback!r} does not exist")
        elif fallback.type not in ("voicemail", "transfer", "hangup"):
            errors.append(f"fallback: node {flow.fallback!r} is a {fallback.type} node; "
                          "a fallback must be a voicemail, transfer or hangup node")
    for node_id, node in flow.nodes.items():
        errors += [f"node {node_id!r}: {label} goes to {target!r}, which does not exist"
                   for label, target in node_targets(node) if target not in flow.nodes]
    return errors


def _successors(flow: Flow, node_id: str) -> list[str]:
    return list(dict.fromkeys(target for _, target in node_targets(flow.nodes[node_id])))


def _reachable(flow: Flow, start: str) -> set[str]:
    seen, todo = {start}, [start]
    if flow.fallback is not None:
        seen.add(flow.fallback)
    while todo:
        for target in _successors(flow, todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _unreachable(flow: Flow) -> list[str]:
    reached = _reachable(flow, flow.start)
    return [f"node {node_id!r} cannot be reached from the start ({flow.start!r})"
            for node_id in flow.nodes if node_id not in reached]


def _without_exit(flow: Flow) -> list[str]:
    """Nodes that can never lead to an ending: the caller would go round for ever."""
    can_end = {node_id for node_id, node in flow.nodes.items() if node.type in TERMINAL_TYPES}
    changed = True
    while changed:
        changed = False
        for node_id in flow.nodes:
            if node_id not in can_end and any(target in can_end for target in _successors(flow, node_id)):
                can_end.add(node_id)
                changed = True
    return [f"node {node_id!r} is in a loop with no way out: nothing after it ends the call"
            for node_id in flow.nodes if node_id not in can_end]


def _idle_loops(flow: Flow) -> list[str]:
    """A loop made only of nodes that do not wait for a key would run without end within one call."""
    automatic = {node_id for node_id, node in flow.nodes.items() if node.type not in INPUT_TYPES}
    errors = []
    for component in _cycles(flow, automatic):
        names = " -> ".join(repr(node_id) for node_id in [*component, component[0]])
        errors.append(f"loop {names} never waits for the caller: put a menu in it or remove it")
    return errors


def _cycles(flow: Flow, allowed: set[str]) -> list[list[str]]:
    """Strongly connected components (Tarjan) of the subgraph on ``allowed`` that contain a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node_id: str) -> None:
        index[node_id] = low[node_id] = len(index)
        stack.append(node_id)
        for target in _successors(flow, node_id):
            if target not in allowed:
                continue
            if target not in index:
                visit(target)
                low[node_id] = min(low[node_id], low[target])
            elif target in stack:
                low[node_id] = min(low[node_id], index[target])
        if low[node_id] == index[node_id]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node_id:
                    break
            if len(component) > 1 or node_id in _successors(flow, node_id):
                found.append(sorted(component))

    for node_id in sorted(allowed):
        if node_id not in index:
            visit(node_id)
    return found


def _unknown_prompts(flow: Flow, known: Collection[str]) -> list[str]:
    errors = []
    for node_id, node in flow.nodes.items():
        errors += [f"node {node_id!r}: prompt {name!r} is neither in the prompt catalog nor recorded"
                   for name in dict.fromkeys(node_prompts(node)) if name not in known]
    return errors
