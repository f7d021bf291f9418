"""``cti acd import|export``: the ACD's agents and queues as one YAML document, from a shell.

These write straight to the database: a running server picks the change up when it reloads its ACD
(any write through the API does that) or restarts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from cti.acd.config import AcdConfigInvalid, AcdDocument
from cti.acd.store import AcdStore, read_yaml
from cti.db import run_with_database
from cti.export_file import write_export
from cti.ivr.documents import dump_yaml
from cti.settings import Settings

T = TypeVar("T")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = commands.add_parser("acd", help="ACD: agents and queues").add_subparsers(required=True, metavar="ACTION")
    load = actions.add_parser("import", help="replace the agents and queues with a YAML document's")
    load.add_argument("file", type=Path)
    load.set_defaults(run=run_import)
    export = actions.add_parser("export", help="write the agents and queues as YAML (default: to stdout)")
    export.add_argument("file", type=Path, nargs="?")
    export.set_defaults(run=run_export)


def with_store(settings: Settings, work: Callable[[AcdStore], Awaitable[T]]) -> T:
    """Runs ``work`` with a store on the configured database, closed afterwards."""
    return run_with_database(settings.database, lambda db: work(AcdStore(db)))


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.file}: cannot read it ({getattr(exc, 'strerror', None) or exc})", file=sys.stderr)
        return 1

    async def work(store: AcdStore) -> AcdDocument:
        return await store.import_document(read_yaml(text))

    try:
        document = with_store(settings, work)
    except AcdConfigInvalid as exc:
        print(f"{args.file}: refused", *(f"  - {reason}" for reason in exc.errors), sep="\n", file=sys.stderr)
        return 1
    print(f"{args.file}: imported {len(document.agents)} agents, {len(document.queues)} queues")
    return 0


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    text = dump_yaml(with_store(settings, AcdStore.export_document))
    return write_export(text, args.file, "exported")
