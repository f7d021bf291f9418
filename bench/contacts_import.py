"""Contacts CSV import: N generated rows into a fresh migrated database, then the same file again.

The file: ``--rows`` contacts (default 50,000), 1 to 3 French numbers each in national format (so every
number goes through phonenumbers), one in three in one of 500 companies with a contract level, an
e-mail and a language. Phases, timed apart: ``check`` (reading and checking the file, no database),
``dry-run``, ``import`` (everything created) and ``reimport`` (the same file: everything unchanged, the
idempotence path), then ``export`` and the size of the file.

Run: ``.venv/bin/python bench/contacts_import.py [--rows 50000] [--url postgresql+asyncpg://...]``
(default: a SQLite file in a temporary folder). Prints JSON, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import machine, timed
from cti.contacts.csv_export import export_csv
from cti.contacts.csv_import import import_csv, read_csv
from cti.contacts.store import ContactStore
from cti.db import make_database
from cti.db.migrate import upgrade
from cti.settings import DatabaseSettings

T = TypeVar("T")
LEVELS = ("standard", "gold", "platinum")


def generate(rows: int, seed: int) -> bytes:
    """Unique numbers: the row index is spread over the subscriber digits of 06/07 mobiles."""
    rng = random.Random(seed)
    lines = ["name,numbers,email,company,contract_level,vip,language"]
    for index in range(rows):
        numbers = [f"0{6 + slot} {index // 1_000_000 % 100:02d} {index // 10_000 % 100:02d} "
                   f"{index // 100 % 100:02d} {index % 100:02d}" for slot in range(rng.randint(1, 2))]
        if rng.random() < 0.2:
            numbers.append(f"+33 9 {index // 1_000_000 % 100:02d} {index // 10_000 % 100:02d} "
                           f"{index // 100 % 100:02d} {index % 100:02d}")
        company = rng.randrange(500) if rng.random() < 0.33 else None
        lines.append(",".join([
            f"Contact {index}", ";".join(numbers), f"c{index}@example.com",
            f"Company {company}" if company is not None else "", LEVELS[company % 3] if company is not None else "",
            "yes" if rng.random() < 0.01 else "no", rng.choice(("en", "fr", ""))]))
    return ("\n".join(lines) + "\n").encode()


async def run(url: str, data: bytes) -> dict[str, Any]:
    db = make_database(DatabaseSettings(url=url))
    store = ContactStore(db, "FR", LEVELS)
    phases: dict[str, Any] = {}
    try:
        start = time.perf_counter()
        rows = read_csv(data, "FR", LEVELS)
        phases["check"] = {"seconds": round(time.perf_counter() - start, 2), "rows": len(rows)}
        for name, dry_run in (("dry-run", True), ("import", False), ("reimport", False)):
            report, seconds = await timed(import_csv(store, data, dry_run=dry_run))
            phases[name] = {"seconds": round(seconds, 2), "created": report.created, "updated": report.updated,
                            "unchanged": report.unchanged}
        text, seconds = await timed(export_csv(db))
        phases["export"] = {"seconds": round(seconds, 2), "bytes": len(text.encode())}
    finally:
        await db.close()
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--url", help="a migrated empty database (default: a new SQLite file)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = generate(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
        if not args.url:
            upgrade(DatabaseSettings(url=url))
        phases = asyncio.run(run(url, data))
    print(json.dumps({"machine": machine(), "rows": args.rows, "file_bytes": len(data), "phases": phases}, indent=2))
    for name, figures in phases.items():
        print(f"{name:10} {figures['seconds']:8.2f} s  " + "  ".join(f"{k} {v}" for k, v in figures.items()
                                                                   if k != "seconds"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
