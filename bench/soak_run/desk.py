"""The soak's desk: the service number, its flow and the ACD, seeded through the CLI and staffed through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.server_process import ServerProcess

NUMBER = "5557000"
ALWAYS = ["00:00-00:00"]
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def desk_document() -> dict[str, Any]:
    return {
        "number": NUMBER, "name": "Soak desk", "language": "en",
        "hours": {"timezone": "Europe/Paris", "weekly": dict.fromkeys(DAYS, ALWAYS), "holidays": {"country": "FR"}},
        "flow": {"start": "screen", "nodes": {
            "screen": {"type": "caller", "rules": [{"when": {"caller": ["blocked"]}, "next": "refuse"}],
                       "default": "hours"},
            "refuse": {"type": "hangup", "prompts": ["blocked-caller"]},
            "hours": {"type": "hours", "open": "main", "closed": "refuse", "holiday": "main"},
            "main": {"type": "menu", "prompt": "main-menu", "options": {"1": "support", "2": "backoffice",
                                                                        "9": "message"}, "on_failure": "goodbye"},
            "support": {"type": "enqueue", "queue": "support", "skills": {"software": 1}, "overflow": "goodbye"},
            "backoffice": {"type": "enqueue", "queue": "backoffice", "overflow": "goodbye"},
            "message": {"type": "voicemail", "reason": "request"},
            "goodbye": {"type": "hangup", "prompts": ["goodbye"]},
        }},
    }  # fmt: skip


def acd_document(agents: int) -> dict[str, Any]:
    desk = [{"id": f"agent{n:02d}", "name": f"Agent {n}", "team": "support", "skills": {"software": 1 + n % 5},
             "endpoint": f"Local/agent{n:02d}@cti-agent-sim"} for n in range(1, agents + 1)]
    night = {"id": "night1", "name": "Night shift", "endpoint": "Local/night1@cti-agent-sim",
             "skills": {"escalation": 3}}
    queues = [{"name": "support", "label": "Support", "skills": {"software": 1}, "wrap_up_s": 1, "ring_timeout_s": 10},
              {"name": "backoffice", "label": "Back office", "skills": {"escalation": 1}}]
    return {"agents": [*desk, night], "queues": queues}


async def seed(server: ServerProcess, work: Path, agents: int) -> None:
    """``cti demo`` (migrations, prompts), then the desk and the ACD through the CLI."""
    (work / "desk.json").write_text(json.dumps(desk_document()))
    (work / "acd.json").write_text(json.dumps(acd_document(agents)))
    await server.run_cli("demo")
    await server.run_cli("ivr", "import", str(work / "desk.json"))
    await server.run_cli("acd", "import", str(work / "acd.json"))


async def staff(server: ServerProcess, agents: int) -> None:
    """Log every agent in through the HTTP API; the back office's only agent stays paused."""
    for n in range(1, agents + 1):
        await server.request_json("POST", f"/api/acd/agents/agent{n:02d}/login", {}, expect=200)
    await server.request_json("POST", "/api/acd/agents/night1/login", {}, expect=200)
    await server.request_json("POST", "/api/acd/agents/night1/pause", {"reason": "soak test"}, expect=200)
