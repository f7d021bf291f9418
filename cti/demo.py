"""Demo data: two service numbers (English and French) with opening hours and a full flow, the ACD's
agents and queues they enqueue into, and logins for a supervisor and each demo agent, so a fresh install
answers calls at once. The documents live in ``demo/services/*.yaml`` and ``demo/acd.yaml``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cti.acd.config import parse_document
from cti.acd.store import AcdStore, read_yaml
from cti.contacts.csv_import import import_csv
from cti.contacts.store import ContactStore
from cti.ivr.documents import import_document, load_yaml
from cti.ivr.service import IvrService
from cti.ivr.store import load_service
from cti.resources import resource_path
from cti.users.store import UserStore

DEMO_SUPERVISOR = "supervisor"
DEMO_LOGINS_FILE = "demo-logins.txt"
PASSWORD_LINE = "password: "

DEMO_SERVICES = "demo/services"
DEMO_ACD = "demo/acd.yaml"
DEMO_CONTACTS = "demo/contacts.csv"


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


async def seed_contacts_demo(store: ContactStore) -> int:
    """Imports the demo contacts (``demo/contacts.csv``) only while there is no contact at all (an admin's
    directory stays); returns how many were created."""
    if (await store.search(limit=1)).total:
        return 0
    return (await import_csv(store, resource_path(DEMO_CONTACTS).read_bytes())).created


# --- demo logins -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    agent_id: str | None
    language: str | None

    def describe(self) -> str:
        return f"{self.username} ({self.role}{f' {self.agent_id}' if self.agent_id else ''})"


def demo_logins() -> list[DemoLogin]:
    """A supervisor, then one agent login per demo ACD agent (username = agent id)."""
    document = parse_document(read_yaml(resource_path(DEMO_ACD).read_text(encoding="utf-8")))
    agents = [DemoLogin(agent.id.lower(), "agent", agent.id, _language(agent.skills)) for agent in document.agents]
    return [DemoLogin(DEMO_SUPERVISOR, "supervisor", None, None), *agents]


def _language(skills: dict[str, int]) -> str | None:
    """The agent's best language skill (``lang-fr: 5``) among ours; None when none, or two tie."""
    levels = {lang: skills[f"lang-{lang}"] for lang in ("en", "fr") if f"lang-{lang}" in skills}
    ranked = sorted(levels.items(), key=lambda item: -item[1])
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


async def seed_demo_logins(users: UserStore, password: Callable[[], str]) -> list[DemoLogin]:
    """Creates the demo logins that are missing (an existing user, or an agent id some user already is, is left
    alone); ``password`` is asked for only when one is created. Returns the logins created."""
    existing = await users.list()
    names, agents = {user.username for user in existing}, {user.agent_id for user in existing}
    missing = [login for login in demo_logins() if login.username not in names
               and (login.agent_id is None or login.agent_id not in agents)]
    if not missing:
        return []
    secret = password()
    for login in missing:
        await users.create(login.username, secret, login.role, agent_id=login.agent_id, language=login.language)
    return missing


def demo_password(logins_file: Path, from_environment: str | None) -> tuple[str, bool]:
    """``(password, generated)``: the given one, else the one written in ``logins_file`` by an earlier run,
    else a new random one (``generated``: the caller writes it down with :func:`write_demo_logins`)."""
    if from_environment:
        return from_environment, False
    try:
        for line in logins_file.read_text(encoding="utf-8").splitlines():
            if line.startswith(PASSWORD_LINE) and line[len(PASSWORD_LINE):].strip():
                return line[len(PASSWORD_LINE):].strip(), False
    except FileNotFoundError:
        pass
    return secrets.token_urlsafe(12), True


def write_demo_logins(logins_file: Path, password: str, logins: list[DemoLogin]) -> None:
    """Owner-only (0600) from its creation: the file holds a password."""
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([
        "# Demo logins written by `cti demo`: every demo user below has this password. Log in at /login;",
        "# change them (cti users passwd NAME) before the server is reachable by anyone else.",
        f"{PASSWORD_LINE}{password}",
        *(f"user: {login.describe()}" for login in logins),
    ]) + "\n"
    descriptor = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
