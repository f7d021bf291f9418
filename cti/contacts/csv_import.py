"""CSV import of contacts: all or nothing, idempotent, and fast enough for 50,000 rows.

The file is checked whole before anything is written: every bad row is reported with its line, and one
bad row means nothing is imported. A row whose numbers (one is enough) belong to a stored contact updates
that contact instead of adding a twin, so importing the same file twice changes nothing the second time.
The database is read and written in batches (a few queries per 900 rows), never once per row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterator

from sqlalchemy.exc import IntegrityError

from cti.contacts.csv_plan import CsvRow, ImportReport, apply_plan, plan_import
from cti.contacts.errors import ContactInvalid, CsvInvalid, CsvTooLarge, ImportConflict, RowError
from cti.contacts.store import ContactStore
from cti.contacts.validation import ContactInput, check_contact

COLUMNS = ("name", "numbers", "email", "company", "contract_level", "vip", "language")
REQUIRED = ("name", "numbers")
MAX_CSV_BYTES = 20_000_000
NUMBER_SEPARATOR = re.compile(r"[;|]")
YES = frozenset({"1", "yes", "y", "true", "oui", "o", "x"})
NO = frozenset({"", "0", "no", "n", "false", "non"})


async def import_csv(store: ContactStore, data: bytes, *, dry_run: bool = False) -> ImportReport:
    """Checks the whole file, then (unless ``dry_run``) writes it in one transaction.

    CsvTooLarge, or CsvInvalid listing every bad row (nothing written), or what was (or would be) done."""
    rows = read_csv(data, store.region, store.contract_levels)
    try:
        async with store.db.session() as session:
            plan = await plan_import(session, rows)
            if not dry_run:
                await apply_plan(session, plan)
    except IntegrityError:
        raise ImportConflict("the contacts changed while the file was being imported: import it again") from None
    return plan.report(dry_run)


def read_csv(data: bytes, region: str, levels: Collection[str] = ()) -> list[CsvRow]:
    """Every row checked and normalised, or CsvInvalid listing every bad row (a bad header or encoding alone)."""
    if len(data) > MAX_CSV_BYTES:
        raise too_large()
    rows: list[CsvRow] = []
    errors: list[RowError] = []
    for line, values, columns in _records(_decode(data)):
        try:
            rows.append(CsvRow(line, check_row(values, columns, region, levels)))
        except ContactInvalid as exc:
            errors.append(RowError(line, "; ".join(exc.errors)))
    errors.extend(file_conflicts(rows))
    if errors:
        raise CsvInvalid(sorted(errors, key=lambda error: error.line))
    return rows


def too_large() -> CsvTooLarge:
    return CsvTooLarge(f"the file is larger than {MAX_CSV_BYTES / 1e6:g} MB: split it in several files")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvInvalid([RowError(line, "the file is not UTF-8 text (save it as 'CSV UTF-8')")]) from None


def _records(text: str) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line where the row starts, its values, the header's columns) for each non-blank row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
    try:
        columns = read_header(next(reader, []))
        start = reader.line_num + 1
        for values in reader:
            if any(value.strip() for value in values):
                yield start, values, columns
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CsvInvalid([RowError(reader.line_num, f"not readable as CSV ({exc})")]) from None


def sniff_delimiter(text: str) -> str:
    """',' or ';' (what a French spreadsheet writes): whichever splits the header into more columns."""
    header = text.split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


def read_header(values: list[str]) -> list[str]:
    columns = [value.strip().lower() for value in values]
    known = ", ".join(COLUMNS)
    if not any(columns):
        raise CsvInvalid([RowError(1, f"the file is empty: line 1 must be the header ({known})")])
    problems = []
    unknown = [column for column in columns if column not in COLUMNS]
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))} (known: {known})")
    missing = [column for column in REQUIRED if column not in columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}: line 1 must be the header ({known})")
    doubled = sorted({column for column in columns if columns.count(column) > 1})
    if doubled:
        problems.append(f"column(s) given twice: {', '.join(doubled)}")
    if problems:
        raise CsvInvalid([RowError(1, "; ".join(problems))])
    return columns


def check_row(values: list[str], columns: list[str], region: str, levels: Collection[str]) -> ContactInput:
    """The row as a checked contact, or ContactInvalid with every reason (a wrong field count alone)."""
    if len(values) != len(columns):
        raise ContactInvalid([f"{len(values)} fields but the header has {len(columns)} columns"])
    fields = dict(zip(columns, (value.strip() for value in values), strict=True))
    problems: list[str] = []
    try:
        contact = check_contact(ContactInput(
            name=fields["name"], numbers=[part for part in NUMBER_SEPARATOR.split(fields["numbers"]) if part.strip()],
            email=fields.get("email", ""), company=fields.get("company") or None,
            contract_level=fields.get("contract_level") or None, language=fields.get("language") or None,
            vip=fields.get("vip", "").lower() in YES), region, levels)
    except ContactInvalid as exc:
        problems.extend(exc.errors)
    if fields.get("vip", "").lower() not in YES | NO:
        problems.append(f"vip: {fields['vip'][:20]!r} is not yes or no (or 1/0, oui/non, empty)")
    if problems:
        raise ContactInvalid(problems)
    return contact


def file_conflicts(rows: list[CsvRow]) -> list[RowError]:
    """Rows the file contradicts itself on: a number on two rows, a company given two contract levels."""
    errors: list[RowError] = []
    number_lines: dict[str, int] = {}
    levels: dict[str, tuple[str, int]] = {}
    for row in rows:
        for number in row.contact.numbers:
            first = number_lines.setdefault(number, row.line)
            if first != row.line:
                errors.append(RowError(row.line, f"number {number} is also on line {first}"))
        company, level = row.contact.company, row.contact.contract_level
        if company is None or level is None:
            continue
        known, first = levels.setdefault(company, (level, row.line))
        if known != level:
            errors.append(RowError(row.line, f"company {company!r}: contract_level {level!r} here but "
                                             f"{known!r} on line {first}"))
    return errors
