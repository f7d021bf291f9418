"""``cti contacts import FILE [--dry-run]`` and ``cti contacts export [FILE]``: contacts as CSV, from a shell.

These write straight to the database; a running server sees the change on the next call (every lookup
reads the database). Numbers are read with ``[ivr] default_region`` and contract levels checked against
``[tickets] sla``, as the API does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from cti.contacts import csv_import
from cti.contacts.csv_export import export_csv
from cti.contacts.csv_plan import ImportReport
from cti.contacts.errors import CsvInvalid, CsvTooLarge, ImportConflict
from cti.contacts.store import ContactStore
from cti.db import run_with_database
from cti.export_file import write_export
from cti.settings import Settings

T = TypeVar("T")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = commands.add_parser("contacts", help="contacts and companies: CSV import and export").add_subparsers(
        required=True, metavar="ACTION")
    load = actions.add_parser("import", help="add or update contacts from a CSV file (all or nothing)")
    load.add_argument("file", type=Path)
    load.add_argument("--dry-run", action="store_true", help="check the file and say what it would do; write nothing")
    load.set_defaults(run=run_import)
    export = actions.add_parser("export", help="write every contact as CSV (default: to stdout)")
    export.add_argument("file", type=Path, nargs="?")
    export.set_defaults(run=run_export)


def with_contacts(settings: Settings, work: Callable[[ContactStore], Awaitable[T]]) -> T:
    """Runs ``work`` with a store on the configured database, closed afterwards."""
    region, levels = settings.ivr.default_region, settings.tickets.sla
    return run_with_database(settings.database, lambda db: work(ContactStore(db, region, levels)))


def seed_demo(settings: Settings) -> None:
    """``cti demo``'s part: the demo contacts, imported while the directory is empty."""
    from cti.demo import seed_contacts_demo

    print(f"demo data: {with_contacts(settings, seed_contacts_demo)} contacts imported")


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.file.stat().st_size > csv_import.MAX_CSV_BYTES:
            raise csv_import.too_large()
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"{args.file}: cannot read it ({exc.strerror or exc})", file=sys.stderr)
        return 1
    except CsvTooLarge as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1

    async def work(store: ContactStore) -> ImportReport:
        return await csv_import.import_csv(store, data, dry_run=args.dry_run)

    try:
        report = with_contacts(settings, work)
    except CsvInvalid as exc:
        print(f"{args.file}: refused, nothing imported", *(f"  line {error.line}: {error.message}"
                                                         for error in exc.errors), sep="\n", file=sys.stderr)
        return 1
    except ImportConflict as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: {describe(report)}")
    return 0


def describe(report: ImportReport) -> str:
    done = (f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged; companies: "
            f"{report.companies_created} created, {report.companies_updated} updated")
    return f"would be {done} (dry run: nothing written)" if report.dry_run else done


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    async def work(store: ContactStore) -> tuple[str, int]:
        return await export_csv(store.db), (await store.search(limit=1)).total

    text, count = with_contacts(settings, work)
    return write_export(text, args.file, f"exported {count} contacts")
