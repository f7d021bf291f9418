"""ACD routing: the incremental ``Router`` against the naive full scan, on the same seeded call centre.

The call centre: N agents holding 6-18 of 200 skills (popularity falls with rank, so some skills are
common and some rare) at levels 1-5; 40 queues needing 1-3 skills at levels 1-3, each with three
relaxation steps (30 s: levels -1; 60 s: levels -1 and the last skill dropped; 90 s: levels -2 and
another queue's agents borrowed) and a 300 s max wait; 1,000 waiting calls with priorities 0-3, 20%
with a preferred agent (60 s window) and 10% needing a language on top of their queue's skills. Agents:
10% available, the rest on a call, in wrap-up, paused or logged out.

Two phases, both implementations fed the same events:

* ``burst``: one pass over the 1,000 waiting calls with 10% of the agents free (every call examined,
  hundreds of assignments): decisions per second = decisions / pass time.
* ``steady``: the live pattern. Each event frees one busy agent and brings one new call (so ~1,000 keep
  waiting), then runs a pass; the latency of a pass that assigned calls, divided by the calls it
  assigned, is one per-decision sample (p50/p99). Agents given a call go on a call, and back to the
  pool of busy agents freed later.

``naive`` is ``cti.acd.naive.naive_assign``: every agent scanned for every waiting call, in every pass.
It is slow, so it runs fewer rounds and events; the bench checks that both made the same decisions on
the events both ran. Method and figures: docs/BENCHMARKS.md ("ACD routing").

Run: ``.venv/bin/python bench/acd_routing.py [--agents 1000 5000] [--calls 1000] [--events 3000]
[--naive-events 20] [--rounds 5] [--seed 7] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import json
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import machine, percentile
from cti.acd.model import Agent, AgentState, Decision, QueueSpec, RoutingStep, WaitingCall
from cti.acd.naive import naive_assign
from cti.acd.policy import reserve
from cti.acd.routing import Router

T0 = 10_000.0
SKILLS = [f"s{number:03d}" for number in range(200)]
LANGUAGES = ["lang_en", "lang_fr", "lang_de", "lang_es", "lang_it"]
QUEUES = 40
BUSY = [AgentState.ON_CALL] * 55 + [AgentState.WRAP_UP] * 10 + [AgentState.PAUSED] * 10 + [AgentState.LOGGED_OUT] * 15
TARGET_P99_US = 1000.0
TARGET_RATIO = 10.0


# --- the call centre -----------------------------------------------------------------------------


@dataclass
class Centre:
    queues: dict[str, QueueSpec]
    agents: list[Agent]
    calls: list[WaitingCall]
    weights: list[float] = field(default_factory=lambda: [1 / (rank + 1) ** 0.7 for rank in range(len(SKILLS))])


def pick_skills(rng: random.Random, weights: list[float], count: int) -> list[str]:
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.update(rng.choices(SKILLS[: len(weights)], weights, k=count - len(chosen)))
    return sorted(chosen)


def make_agent(rng: random.Random, weights: list[float], number: int) -> Agent:
    skills = {skill: rng.randint(1, 5) for skill in pick_skills(rng, weights, rng.randint(6, 18))}
    skills[rng.choice(LANGUAGES)] = rng.randint(1, 5)
    state = AgentState.AVAILABLE if rng.random() < 0.10 else rng.choice(BUSY)
    reason = "break" if state is AgentState.PAUSED else None
    return Agent(f"agent{number:05d}", skills, f"team{number % 50}", state, T0 - 600, T0 - rng.uniform(0, 600), reason)


def make_queue(rng: random.Random, weights: list[float], number: int) -> QueueSpec:
    skills = pick_skills(rng, weights[:60], rng.randint(1, 3))
    steps = (
        RoutingStep(30.0, level_delta=1),
        RoutingStep(60.0, level_delta=1, drop=frozenset(skills[-1:]) if len(skills) > 1 else frozenset()),
        RoutingStep(90.0, level_delta=2, borrow=(f"queue{(number + 1) % QUEUES:02d}",)),
    )
    required = {skill: rng.randint(1, 3) for skill in skills}
    return QueueSpec(f"queue{number:02d}", required, steps, 300.0, "voicemail")


def make_call(centre: Centre, rng: random.Random, number: int, arrived: float) -> WaitingCall:
    queue = centre.queues[f"queue{rng.randrange(QUEUES):02d}"]
    skills = {**queue.required, rng.choice(LANGUAGES): 1} if rng.random() < 0.10 else None
    preferred = rng.choice(centre.agents).id if rng.random() < 0.20 else None
    priority = rng.choice([0, 0, 0, 1, 1, 2, 3])
    return WaitingCall(f"call{number:07d}", queue.name, priority, arrived, skills, preferred, 60.0)


def make_centre(agents: int, calls: int, seed: int) -> Centre:
    rng = random.Random(seed)
    centre = Centre({}, [], [])
    centre.queues = {spec.name: spec for spec in (make_queue(rng, centre.weights, n) for n in range(QUEUES))}
    centre.agents = [make_agent(rng, centre.weights, n) for n in range(agents)]
    centre.calls = [make_call(centre, rng, n, T0 - rng.uniform(0, 280)) for n in range(calls)]
    return centre


# --- the two implementations behind one interface ------------------------------------------------


class Driver(Protocol):
    def free(self, agent_id: str, now: float) -> None: ...
    def add_call(self, call: WaitingCall) -> None: ...
    def run_pass(self, now: float) -> list[Decision]: ...


class RouterDriver:
    def __init__(self, centre: Centre) -> None:
        self.router = Router()
        for spec in centre.queues.values():
            self.router.add_queue(spec)
        for agent in centre.agents:
            self.router.add_agent(agent)
        for call in centre.calls:
            self.router.add_call(call)

    def free(self, agent_id: str, now: float) -> None:
        self.router.set_state(agent_id, AgentState.AVAILABLE, now)

    def add_call(self, call: WaitingCall) -> None:
        self.router.add_call(call)

    def run_pass(self, now: float) -> list[Decision]:
        decisions = self.router.next_assignments(now)
        for decision in decisions:
            if decision.agent_id is not None:
                self.router.set_state(decision.agent_id, AgentState.ON_CALL, now)
        return decisions


class NaiveDriver:
    def __init__(self, centre: Centre) -> None:
        self.queues = centre.queues
        self.agents = {agent.id: replace(agent, skills=dict(agent.skills)) for agent in centre.agents}
        self.calls = {call.id: call for call in centre.calls}

    def free(self, agent_id: str, now: float) -> None:
        agent = self.agents[agent_id]
        if agent.state is not AgentState.AVAILABLE:
            agent.state, agent.state_since, agent.idle_since, agent.pause_reason = AgentState.AVAILABLE, now, now, None

    def add_call(self, call: WaitingCall) -> None:
        self.calls[call.id] = call

    def run_pass(self, now: float) -> list[Decision]:
        decisions = naive_assign(self.agents.values(), self.queues, self.calls.values(), now)
        for decision in decisions:
            del self.calls[decision.call_id]
            if decision.agent_id is not None:
                reserve(self.agents[decision.agent_id], now)
                self.agents[decision.agent_id].state = AgentState.ON_CALL
        return decisions


DRIVERS: dict[str, Callable[[Centre], Driver]] = {"router": RouterDriver, "naive": NaiveDriver}


# --- phases --------------------------------------------------------------------------------------


@dataclass
class Steady:
    per_decision_us: list[float] = field(default_factory=list)
    empty_pass_us: list[float] = field(default_factory=list)
    update_us: list[float] = field(default_factory=list)  # freeing the agent + adding the call
    decisions: list[tuple[str, str | None]] = field(default_factory=list)


def build(name: str, centre: Centre) -> float:
    """Milliseconds to load the agents, queues and waiting calls (the router finds its pools here)."""
    started = time.perf_counter_ns()
    DRIVERS[name](centre)
    return (time.perf_counter_ns() - started) / 1e6


def burst(name: str, centre: Centre) -> tuple[float, list[Decision]]:
    driver = DRIVERS[name](centre)
    gc.collect()
    started = time.perf_counter_ns()
    decisions = driver.run_pass(T0)
    return (time.perf_counter_ns() - started) / 1000, decisions


def steady(name: str, centre: Centre, events: int, seed: int, profiler: cProfile.Profile | None = None) -> Steady:
    """Free one busy agent and add one call per event, then time the pass (see the module docstring)."""
    driver, rng, result = DRIVERS[name](centre), random.Random(seed), Steady()
    driver.run_pass(T0)  # the burst first: the steady state starts with the free agents taken
    busy = sorted(agent.id for agent in centre.agents if agent.state is AgentState.ON_CALL)
    now = T0
    gc.collect()
    for number in range(events):
        now += rng.expovariate(20.0)
        agent_id, call = busy.pop(rng.randrange(len(busy))), make_call(centre, rng, 10_000_000 + number, now)
        started = time.perf_counter_ns()
        driver.free(agent_id, now)
        driver.add_call(call)
        result.update_us.append((time.perf_counter_ns() - started) / 1000)
        if profiler:
            profiler.enable()
        started = time.perf_counter_ns()
        decisions = driver.run_pass(now)
        elapsed = (time.perf_counter_ns() - started) / 1000
        if profiler:
            profiler.disable()
        assigned = [decision.agent_id for decision in decisions if decision.agent_id is not None]
        result.decisions += [(decision.call_id, decision.agent_id) for decision in decisions]
        busy += assigned
        if assigned:
            result.per_decision_us += [elapsed / len(assigned)] * len(assigned)
        else:
            result.empty_pass_us.append(elapsed)
    return result


def measure(agents: int, calls: int, options: argparse.Namespace) -> dict[str, Any]:
    centre = make_centre(agents, calls, options.seed)
    rounds = {"router": options.rounds, "naive": options.naive_rounds}
    bursts = {name: [burst(name, centre) for _ in range(rounds[name])] for name in DRIVERS}
    events = {"router": options.events, "naive": options.naive_events}
    profiler = cProfile.Profile() if options.profile else None
    runs: dict[str, Steady] = {}
    for name in DRIVERS:
        runs[name] = steady(name, centre, events[name], options.seed, profiler if name == "router" else None)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    check_same(bursts, runs)
    return summarise(agents, calls, bursts, runs) | {"router_build_ms": build("router", centre)}


def check_same(bursts: dict[str, list[tuple[float, list[Decision]]]], runs: dict[str, Steady]) -> None:
    """Both implementations must have decided the same thing, or the figures compare nothing."""
    if bursts["router"][0][1] != bursts["naive"][0][1]:
        raise SystemExit("burst: the router and the naive scan disagree")
    common = len(runs["naive"].decisions)
    if runs["router"].decisions[:common] != runs["naive"].decisions:
        raise SystemExit("steady: the router and the naive scan disagree")


# --- report --------------------------------------------------------------------------------------


def latency(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}
    return {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99), "max": max(samples),
            "samples": len(samples)}


def summarise_one(bursts: list[tuple[float, list[Decision]]], run: Steady) -> dict[str, Any]:
    pass_us = statistics.median(elapsed for elapsed, _ in bursts)
    assigned = sum(1 for decision in bursts[0][1] if decision.agent_id is not None)
    return {
        "burst": {"pass_ms": pass_us / 1000, "assigned": assigned, "decisions_per_s": assigned / pass_us * 1e6,
                  "rounds": len(bursts)},
        "steady_per_decision_us": latency(run.per_decision_us),
        "steady_empty_pass_us": latency(run.empty_pass_us),
        "steady_update_us": latency(run.update_us),
    }


def summarise(agents: int, calls: int, bursts: dict[str, Any], runs: dict[str, Steady]) -> dict[str, Any]:
    result = {name: summarise_one(bursts[name], runs[name]) for name in DRIVERS}
    fast, slow = result["router"], result["naive"]
    return {
        "agents": agents, "skills": len(SKILLS), "queues": QUEUES, "waiting_calls": calls, **result,
        "ratio": {
            "burst_decisions_per_s": fast["burst"]["decisions_per_s"] / slow["burst"]["decisions_per_s"],
            "steady_p50": slow["steady_per_decision_us"]["p50"] / fast["steady_per_decision_us"]["p50"],
        },
    }


def table(result: dict[str, Any]) -> str:
    host = result["machine"]
    lines = [
        f"ACD routing, {len(SKILLS)} skills, {QUEUES} queues ({result['date']})",
        f"machine: {host['cpu']}, {host['cores']} cores, Python {host['python']}, load {host['load_before']:.2f}",
        "",
        f"{'agents':>6} {'impl':<7} {'burst ms':>9} {'assigned':>8} {'dec/s':>9} "
        f"{'p50 µs':>8} {'p99 µs':>8} {'max µs':>8} {'n':>5} {'empty p50':>9} {'upd p50/p99':>12}",
    ]
    for size in result["sizes"]:
        for name in DRIVERS:
            row, per = size[name], size[name]["steady_per_decision_us"]
            lines.append(
                f"{size['agents']:>6} {name:<7} {row['burst']['pass_ms']:>9.1f} {row['burst']['assigned']:>8} "
                f"{row['burst']['decisions_per_s']:>9.0f} {per['p50']:>8.0f} {per['p99']:>8.0f} {per['max']:>8.0f} "
                f"{per['samples']:>5} {row['steady_empty_pass_us']['p50']:>9.0f} "
                f"{row['steady_update_us']['p50']:>5.0f} / {row['steady_update_us']['p99']:<5.0f}"
            )
    lines.append("")
    lines.append("router build (agents + queues + waiting calls): " + ", ".join(
        f"{size['router_build_ms']:.0f} ms at {size['agents']} agents" for size in result["sizes"]))
    for size in result["sizes"]:
        ratio, p99 = size["ratio"], size["router"]["steady_per_decision_us"]["p99"]
        verdict = "met" if p99 < TARGET_P99_US and min(ratio.values()) >= TARGET_RATIO else "MISSED"
        lines.append(f"{size['agents']} agents: router / naive x{ratio['burst_decisions_per_s']:.0f} decisions/s "
                     f"(burst), x{ratio['steady_p50']:.0f} p50 per decision (steady); router p99 {p99:.0f} µs "
                     f"(target < {TARGET_P99_US:.0f} µs and >= x{TARGET_RATIO:.0f}: {verdict})")
    return "\n".join(lines)


def main(options: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    sizes = [measure(agents, options.calls, options) for agents in options.agents]
    return {
        "benchmark": "acd_routing",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "definition": "per decision = pass latency / calls it assigned (steady); burst = one pass, 10% agents free",
        "machine": machine() | {"load_before": load_before, "load_after": os.getloadavg()[0]},
        "options": {key: value for key, value in vars(options).items() if key != "profile"},
        "sizes": sizes,
    }


def parse(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events", type=int, default=3000, help="steady-state events for the router")
    parser.add_argument("--naive-events", type=int, default=20, help="steady-state events for the naive scan")
    parser.add_argument("--rounds", type=int, default=5, help="burst rounds for the router")
    parser.add_argument("--naive-rounds", type=int, default=2, help="burst rounds for the naive scan")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the router's steady-state passes")
    return parser.parse_args(None if argv is None else list(argv))


if __name__ == "__main__":
    outcome = main(parse())
    print(json.dumps(outcome, indent=2))
    print()
    print(table(outcome))
