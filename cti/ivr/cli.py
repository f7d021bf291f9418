"""``cti ivr ...``: import, export, validate and simulate service documents from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from cti.db import run_with_database
from cti.ivr.documents import dump_yaml, export_document, import_document, load_yaml
from cti.ivr.errors import DocumentInvalid, ServiceNotFound
from cti.ivr.flow import FlowInvalid
from cti.ivr.schedule import ScheduleError
from cti.ivr.service import IvrService, ivr_service
from cti.ivr.simulator import parse_keys
from cti.settings import Settings

T = TypeVar("T")
REFUSED = (DocumentInvalid, FlowInvalid, ScheduleError)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = commands.add_parser("ivr", help="service numbers: flows and opening hours").add_subparsers(
        required=True, metavar="ACTION")
    load = actions.add_parser("import", help="import (create or update) service documents (YAML)")
    load.add_argument("files", type=Path, nargs="+")
    load.set_defaults(run=run_import)
    export = actions.add_parser("export", help="print a service's document as YAML")
    export.add_argument("number")
    export.set_defaults(run=run_export)
    simulate = actions.add_parser("simulate", help="what a caller would hear, without a call")
    simulate.add_argument("number")
    simulate.add_argument("--caller", default="")
    simulate.add_argument("--at", help="ISO 8601 instant with offset (default: now)")
    simulate.add_argument("--keys", default="", help='one entry per menu, "" for silence: "2,,9"')
    simulate.set_defaults(run=run_simulate)


def with_ivr(settings: Settings, work: Callable[[IvrService], Awaitable[T]]) -> T:
    """Runs ``work`` with an IVR service on the configured database, closed afterwards."""
    return run_with_database(settings.database, lambda db: work(ivr_service(settings, db)))


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    async def work(ivr: IvrService) -> int:
        failed = 0
        for path in args.files:
            text = _read(path)
            if text is None:
                failed += 1
                continue
            try:
                service = await import_document(ivr, load_yaml(text), author="cli")
                print(f"{path}: imported {service.number}")
            except REFUSED as exc:
                failed += 1
                print(f"{path}: refused", *(f"  - {reason}" for reason in exc.errors), sep="\n", file=sys.stderr)
        return failed

    return 1 if with_ivr(settings, work) else 0


def _read(path: Path) -> str | None:
    """The file's text, or None once the reason is printed: a mistyped path must not stop the other files."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})", file=sys.stderr)
        return None


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    try:
        document = with_ivr(settings, lambda ivr: export_document(ivr, args.number))
    except ServiceNotFound as exc:
        print(exc, file=sys.stderr)
        return 1
    print(dump_yaml(document), end="")
    return 0


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    try:
        at = datetime.fromisoformat(args.at) if args.at else None
    except ValueError:
        print(f"--at: {args.at!r} is not an ISO 8601 instant", file=sys.stderr)
        return 2
    if at is not None and at.tzinfo is None:
        print("--at needs a UTC offset (e.g. 2026-11-23T09:00+01:00)", file=sys.stderr)
        return 2

    async def work(ivr: IvrService) -> dict[str, object]:
        result = await ivr.simulate(args.number, args.caller, at or ivr.clock(), parse_keys(args.keys))
        return result.as_dict()

    try:
        print(json.dumps(with_ivr(settings, work), indent=2, ensure_ascii=False))
    except ServiceNotFound as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0
