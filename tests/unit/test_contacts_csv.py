"""CSV import and export of contacts: the file format (BOM, ';', any column order, line numbers), all or
nothing, idempotent re-import, updates by number, the export importing back to the same data, and the demo
contacts the caller directory then finds (SQLite and PostgreSQL where a database is used)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.contacts import csv_import
from cti.contacts.csv_export import export_csv
from cti.contacts.csv_import import import_csv, read_csv
from cti.contacts.directory import CallerDirectory
from cti.contacts.errors import CsvInvalid, CsvTooLarge, RowError
from cti.contacts.store import ContactStore, ContactView
from cti.contacts.validation import ContactInput
from cti.db import Database, make_database
from cti.demo import seed_contacts_demo
from cti.settings import DatabaseSettings
from tests.plugins.database import Templates
from tests.support.ivr import MONDAY_10

LEVELS = ("standard", "gold", "platinum")
HEADER = "name,numbers,email,company,contract_level,vip,language\n"
GOOD = (HEADER
        + "Claire Martin,06 12 34 56 78,claire.martin@dupont-sa.example,Dupont SA,gold,no,fr\n"
        + 'Julien Moreau,"+33 1 99 00 12 34;06 39 98 12 01",,Dupont SA,,yes,\n'
        + "James Whitaker,+44 20 7946 0321|+44 7700 900123,,Northwind Ltd,platinum,oui,en\n")


@pytest.fixture
def store(database: Database) -> ContactStore:
    return ContactStore(database, "FR", LEVELS)


def rows(text: str | bytes) -> list[tuple[int, ContactInput]]:
    data = text.encode() if isinstance(text, str) else text
    return [(row.line, row.contact) for row in read_csv(data, "FR", LEVELS)]


def refusal(text: str | bytes) -> list[tuple[int, str]]:
    with pytest.raises(CsvInvalid) as refused:
        read_csv(text.encode() if isinstance(text, str) else text, "FR", LEVELS)
    return [(error.line, error.message) for error in refused.value.errors]


def summary(contacts: list[ContactView]) -> list[tuple[object, ...]]:
    """A contact's data without its id and creation time, to compare two databases."""
    return [(c.name, c.numbers, c.email, c.language, c.vip, c.company and (c.company.name, c.company.contract_level))
            for c in contacts]


# --- the file format (no database) -----------------------------------------------------------------


def test_a_good_file_is_read_with_its_numbers_normalised() -> None:
    assert rows(GOOD) == [
        (2, ContactInput("Claire Martin", ("+33612345678",), "claire.martin@dupont-sa.example", "Dupont SA", "gold",
                         None, "fr", False)),
        (3, ContactInput("Julien Moreau", ("+33199001234", "+33639981201"), "", "Dupont SA", None, None, None, True)),
        (4, ContactInput("James Whitaker", ("+442079460321", "+447700900123"), "", "Northwind Ltd", "platinum", None,
                         "en", True)),
    ]


def test_a_bom_a_semicolon_delimiter_and_any_column_order() -> None:
    text = ("\ufeffLanguage;VIP;Numbers;Name\r\n"
            "fr;1;06 12 34 56 78 | 01 99 00 12 34;Hélène Petit\r\n\r\n;;+447700900456;Sarah\r\n")
    assert rows(text.encode("utf-8")) == [
        (2, ContactInput("Hélène Petit", ("+33612345678", "+33199001234"), language="fr", vip=True)),
        (4, ContactInput("Sarah", ("+447700900456",))),
    ]


def test_every_bad_row_is_reported_with_its_line() -> None:
    text = (HEADER
            + "Good,+33612345678,,,,,\n"
            + "Bad Email,+33612345679,nope,,,,\n"
            + '"A name on\ntwo lines",+33612345670,,,,,\n'  # starts on line 4, refused (a new line in a name)
            + ",12,,Acme,diamond,maybe,de\n"
            + "Short,+33612345671\n"
            + "Twice,06 12 34 56 78,,,,,\n")
    assert refusal(text) == [
        (3, "email: 'nope' is not an e-mail address"),
        (4, "name: control characters (tab, new line, ...) are not allowed"),
        (6, "; ".join([
            "name: must not be empty",
            "numbers: '12' is not a phone number (write it as +33612345678, or in the national format of FR)",
            "contract_level: 'diamond' is not one of gold, platinum, standard",
            "language: 'de' is not one of en, fr (or empty)",
            "vip: 'maybe' is not yes or no (or 1/0, oui/non, empty)"])),
        (7, "2 fields but the header has 7 columns"),
        (8, "number +33612345678 is also on line 2"),
    ]


def test_a_company_given_two_contract_levels_is_refused() -> None:
    text = HEADER + "A,+33612345678,,Acme,gold,,\nB,+33612345679,,Acme,,,\nC,+33612345670,,Acme,platinum,,\n"
    assert refusal(text) == [(4, "company 'Acme': contract_level 'platinum' here but 'gold' on line 2")]


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty: line 1 must be the header"),
    ("Claire Martin,+33612345678\n", "unknown column(s) 'claire martin', '+33612345678'"),
    ("name,numbers,phone\n", "unknown column(s) 'phone' (known: name, numbers, email, company, contract_level, vip"),
    ("name,email\n", "missing column(s) numbers: line 1 must be the header"),
    ("name,numbers,name\n", "column(s) given twice: name"),
])
def test_the_header_is_required_and_checked(text: str, message: str) -> None:
    [(line, reason)] = refusal(text)
    assert line == 1 and message in reason


def test_a_file_not_in_utf8_is_refused_with_the_line_of_the_first_bad_byte() -> None:
    assert refusal((HEADER + "Claire,+33612345678,,,,,\nHélène,+33612345679,,,,,\n").encode("latin-1")) == [
        (3, "the file is not UTF-8 text (save it as 'CSV UTF-8')")]


def test_an_oversized_file_is_refused_before_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_import, "MAX_CSV_BYTES", len(GOOD) - 1)
    with pytest.raises(CsvTooLarge, match=rf"larger than {(len(GOOD) - 1) / 1e6:g} MB: split it"):
        read_csv(GOOD.encode(), "FR")
    assert csv_import.too_large().code == "contacts.csv_too_large"


# --- importing -------------------------------------------------------------------------------------


async def test_an_import_creates_contacts_and_companies_the_directory_finds(
    store: ContactStore, database: Database
) -> None:
    report = await import_csv(store, GOOD.encode())
    assert (report.created, report.updated, report.unchanged, report.companies_created) == (3, 0, 0, 2)
    profile = await CallerDirectory(database, "FR").lookup("+33612345678", MONDAY_10)
    assert (profile.contact_name, profile.company_name, profile.contract_level, profile.language) == (
        "Claire Martin", "Dupont SA", "gold", "fr")
    james = await CallerDirectory(database, "FR").lookup("0044 7700 900123", MONDAY_10)
    assert (james.contact_name, james.contract_level, james.vip) == ("James Whitaker", "platinum", True)


async def test_one_bad_row_means_nothing_is_imported(store: ContactStore) -> None:
    with pytest.raises(CsvInvalid) as refused:
        await import_csv(store, (GOOD + "Bad,not a number,,,,,\n").encode())
    assert refused.value.errors == [RowError(5, "numbers: 'not a number' is not a phone number (write it as "
                                                "+33612345678, or in the national format of FR)")]
    assert (await store.search()).total == 0
    assert await store.list_companies() == []


async def test_a_dry_run_reports_and_writes_nothing(store: ContactStore) -> None:
    report = await import_csv(store, GOOD.encode(), dry_run=True)
    assert (report.created, report.companies_created, report.dry_run) == (3, 2, True)
    assert (await store.search()).total == 0


async def test_importing_the_same_file_again_changes_nothing(store: ContactStore) -> None:
    await import_csv(store, GOOD.encode())
    before = (await store.search()).contacts
    report = await import_csv(store, GOOD.encode())
    assert (report.created, report.updated, report.unchanged, report.companies_created) == (0, 0, 3, 0)
    assert (await store.search()).contacts == before


async def test_a_row_with_a_known_number_updates_that_contact(store: ContactStore) -> None:
    await import_csv(store, GOOD.encode())
    claire = (await store.search(number="+33612345678")).contacts[0]
    changed = HEADER + "Claire Martin-Roux,+33 6 12 34 56 78;+33 6 39 98 00 00,,Dupont SA,platinum,yes,en\n"
    report = await import_csv(store, changed.encode())
    assert (report.created, report.updated, report.unchanged, report.companies_updated) == (0, 1, 0, 1)
    updated = await store.get(claire.id)
    assert summary([updated]) == [("Claire Martin-Roux", ("+33612345678", "+33639980000"), "", "en", True,
                                   ("Dupont SA", "platinum"))]
    assert (await store.search()).total == 3


async def test_rows_that_would_merge_or_share_stored_contacts_are_refused(store: ContactStore) -> None:
    await import_csv(store, GOOD.encode())
    text = (HEADER
            + "Merged,+33612345678;+33199001234,,,,,\n"  # Claire's and Julien's numbers
            + "James A,+442079460321,,,,,\n"
            + "James B,+447700900123,,,,,\n")  # James's other number: the same contact as line 3
    with pytest.raises(CsvInvalid) as refused:
        await import_csv(store, text.encode())
    contacts = {contact.name: contact.id for contact in (await store.search()).contacts}
    assert refused.value.errors == [
        RowError(2, f"its numbers belong to different contacts: Claire Martin (contact {contacts['Claire Martin']}), "
                    f"Julien Moreau (contact {contacts['Julien Moreau']})"),
        RowError(4, f"updates the same contact as line 3: James Whitaker (contact {contacts['James Whitaker']})"),
    ]


@pytest.fixture
async def other_db(migration_templates: Templates, tmp_path: Path) -> AsyncIterator[Database]:
    """A second migrated database (SQLite), to import an export into."""
    target = tmp_path / "other.sqlite3"
    shutil.copyfile(migration_templates.sqlite_file, target)
    db = make_database(DatabaseSettings(url=f"sqlite+aiosqlite:///{target}"))
    yield db
    await db.close()


async def test_an_export_imports_back_to_the_same_data(store: ContactStore, other_db: Database) -> None:
    await import_csv(store, GOOD.encode())
    await store.create(ContactInput("Robert'); DROP TABLE contacts;--", ["+33199000001"], email="a,b@c.example"))
    exported = await export_csv(store.db)
    assert exported.splitlines()[:2] == [
        HEADER.strip(), "Claire Martin,+33612345678,claire.martin@dupont-sa.example,Dupont SA,gold,no,fr"]
    again = await import_csv(store, exported.encode())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    other = ContactStore(other_db, "FR", LEVELS)
    assert (await import_csv(other, exported.encode())).created == 4
    assert summary((await other.search()).contacts) == summary((await store.search()).contacts)
    assert await export_csv(other_db) == exported


async def test_thousands_of_rows_go_through_the_batches(store: ContactStore) -> None:
    """More rows and numbers than one batch (900) holds, some in companies: created, then all unchanged."""
    lines = [HEADER.strip()]
    for index in range(2000):
        company = f"Company {index % 7}," + ("gold" if index % 7 == 0 else "") if index % 3 == 0 else ","
        lines.append(f"Contact {index},+331990{index:05d};+336399{index:05d},,{company},no,")
    data = ("\n".join(lines) + "\n").encode()
    first = await import_csv(store, data)
    assert (first.created, first.companies_created) == (2000, 7)
    again = await import_csv(store, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2000)
    found = (await store.search(number="+33639901999")).contacts
    assert [(c.name, c.numbers) for c in found] == [("Contact 1999", ("+33199001999", "+33639901999"))]


async def test_the_demo_contacts_are_imported_once_and_claire_martin_is_gold(
    store: ContactStore, database: Database
) -> None:
    assert await seed_contacts_demo(store) >= 10
    assert await seed_contacts_demo(store) == 0
    profile = await CallerDirectory(database, "FR").lookup("06 12 34 56 78", MONDAY_10)
    assert (profile.contact_name, profile.company_name, profile.contract_level) == (
        "Claire Martin", "Dupont SA", "gold")
    vips = [contact.name for contact in (await store.search(limit=500)).contacts if contact.vip]
    assert len(vips) == 1
