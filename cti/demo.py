"""Demo data: two service numbers (English and French) with opening hours and a full flow, and the ACD's
agents and queues they enqueue into, so a fresh install answers calls at once. The documents live in
``demo/services/*.yaml`` and ``demo/acd.yaml``."""

from __future__ import annotations

from pathlib import Path

from cti.acd.store import AcdStore, read_yaml
from cti.ivr.documents import import_document, load_yaml
from cti.ivr.service import IvrService
from cti.ivr.store import load_service
from cti.resources import resource_path

DEMO_SERVICES = "demo/services"
DEMO_ACD = "demo/acd.yaml"


def demo_documents(folder: Path | None = None) -> list[Path]:
    return sorted((folder or resource_path(DEMO_SERVICES)).glob("*.yaml"))


async def seed_demo(ivr: IvrService) -> int:
    """Idempotent: imports a demo number only if it is missing or has no flow yet (an admin's edits stay);
    returns how many were imported."""
    imported = 0
    for path in demo_documents():
        document = load_yaml(path.read_text(encoding="utf-8"))
        if await _has_flow(ivr, str(document["number"])):
            continue
        await import_document(ivr, document, author="demo")
        imported += 1
    return imported


async def _has_flow(ivr: IvrService, number: str) -> bool:
    stored = await load_service(ivr.db, number, enabled_only=False)
    return stored is not None and stored.flow is not None


async def seed_acd_demo(store: AcdStore) -> int:
    """Imports the demo agents and queues only while there is no agent at all (an admin's set-up stays);
    returns how many agents were imported."""
    if await store.list_agents():
        return 0
    document = await store.import_document(read_yaml(resource_path(DEMO_ACD).read_text(encoding="utf-8")))
    return len(document.agents)
