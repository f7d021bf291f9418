"""ContactStore on SQLite and PostgreSQL: numbers normalised to E.164, one owner per number, every reason
of a refusal at once, search by name and by number, atomic updates, companies and their contracts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cti.contacts.directory import CallerDirectory
from cti.contacts.errors import CompanyExists, CompanyNotFound, ContactInvalid, ContactNotFound, NumberTaken
from cti.contacts.models import Company, ContactNumber
from cti.contacts.store import ContactStore
from cti.contacts.validation import ContactInput
from cti.db import Database
from tests.support.ivr import MONDAY_10

LEVELS = ("standard", "gold", "platinum")
CLAIRE = ContactInput("Claire Martin", ["06 12 34 56 78"], email="claire.martin@dupont-sa.example",
                      company="Dupont SA", contract_level="gold", language="fr")


@pytest.fixture
def store(database: Database) -> ContactStore:
    return ContactStore(database, "FR", LEVELS)


async def count(database: Database, model: type[ContactNumber] | type[Company]) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_numbers_are_stored_in_e164_and_found_by_the_caller_directory(
    store: ContactStore, database: Database
) -> None:
    numbers = ["06 12 34 56 78", "+33612345678", "0033 1 99 00 12 34"]
    claire = await store.create(ContactInput("  Claire Martin ", numbers, email="claire.martin@dupont-sa.example",
                                             company="Dupont SA", contract_level="gold", language="FR", vip=True))
    assert claire.name == "Claire Martin"
    assert claire.numbers == ("+33612345678", "+33199001234")  # the same number written twice is kept once
    assert (claire.language, claire.vip, claire.company and claire.company.contract_level) == ("fr", True, "gold")
    profile = await CallerDirectory(database, "FR").lookup("0612345678", MONDAY_10)
    assert (profile.contact_id, profile.contact_name, profile.company_name, profile.contract_level) == (
        claire.id, "Claire Martin", "Dupont SA", "gold")
    assert await store.get(claire.id) == claire


async def test_a_number_of_another_contact_is_refused_naming_its_owner(store: ContactStore, database: Database) -> None:
    claire = await store.create(CLAIRE)
    with pytest.raises(NumberTaken, match=rf"^\+33612345678 already belongs to Claire Martin \(contact {claire.id}\)$"):
        await store.create(ContactInput("Jean Dupont", ["+33 6 99 00 00 01", "0612345678"]))
    assert await count(database, ContactNumber) == 1
    assert (await store.search()).total == 1


async def test_every_reason_of_a_refusal_is_given_at_once(store: ContactStore) -> None:
    bad = ContactInput("", ["12", "anonymous"], email="not-an-address", company="Acme", contract_level="diamond",
                       language="de")
    with pytest.raises(ContactInvalid) as refused:
        await store.create(bad)
    assert refused.value.errors == [
        "name: must not be empty",
        "numbers: '12' is not a phone number (write it as +33612345678, or in the national format of FR)",
        "numbers: 'anonymous' is not a phone number (write it as +33612345678, or in the national format of FR)",
        "email: 'not-an-address' is not an e-mail address",
        "contract_level: 'diamond' is not one of gold, platinum, standard",
        "language: 'de' is not one of en, fr (or empty)",
    ]
    with pytest.raises(ContactInvalid, match="give at least one phone number"):
        await store.create(ContactInput("Nobody", []))
    with pytest.raises(ContactInvalid, match="control characters"):
        await store.create(ContactInput("Null\x00Byte", ["+33612345678"]))
    with pytest.raises(ContactInvalid, match="describe a company"):
        await store.create(ContactInput("No Company", ["+33612345678"], contract_level="gold"))


async def test_a_contact_joins_an_existing_company_but_cannot_change_its_contract(
    store: ContactStore, database: Database
) -> None:
    await store.create(CLAIRE)
    julien = await store.create(ContactInput("Julien Moreau", ["+33199001234"], company="Dupont SA"))
    assert julien.company is not None and julien.company.contract_level == "gold"
    with pytest.raises(ContactInvalid, match="'Dupont SA' has the 'gold' contract; change it on the company itself"):
        await store.create(ContactInput("Eve", ["+33199001235"], company="Dupont SA", contract_level="platinum"))
    with pytest.raises(ContactInvalid, match="VIP flag of 'Dupont SA'"):
        await store.create(ContactInput("Eve", ["+33199001235"], company="Dupont SA", company_vip=True))
    new = await store.create(ContactInput("Ann", ["+33199001236"], company="Boulangerie Fournier"))
    assert new.company is not None and (new.company.contract_level, new.company.vip) == ("standard", False)
    assert await count(database, Company) == 2


async def test_contract_levels_are_free_when_none_are_configured(database: Database) -> None:
    contact = await ContactStore(database, "FR").create(
        ContactInput("Ann", ["+33199001236"], company="Acme", contract_level="bronze-2"))
    assert contact.company is not None and contact.company.contract_level == "bronze-2"


async def test_search_by_name_any_case_or_by_number_in_any_format_with_paging(store: ContactStore) -> None:
    for index, name in enumerate(["Claire Martin", "Jean MARTIN", "Zoé Martinez", "Paul Durand"]):
        await store.create(ContactInput(name, [f"+3319900{index:04d}"]))
    page = await store.search("martin", limit=2)
    assert [contact.name for contact in page.contacts] == ["Claire Martin", "Jean MARTIN"]
    assert (page.total, page.limit, page.offset) == (3, 2, 0)
    assert [contact.name for contact in (await store.search("MARTIN", limit=2, offset=2)).contacts] == ["Zoé Martinez"]
    assert [contact.name for contact in (await store.search("Zoé")).contacts] == ["Zoé Martinez"]
    assert [contact.name for contact in (await store.search(number="01 99 00 00 03")).contacts] == ["Paul Durand"]
    assert (await store.search("claire", number="+33199000003")).total == 0
    assert (await store.search(number="not a number")).total == 0
    assert (await store.search(limit=10_000)).limit == 500


@pytest.mark.parametrize("name", ["Robert'); DROP TABLE contacts;--", "100% O'Brien_\\x", "' OR 1=1 --"])
async def test_names_that_look_like_sql_are_stored_verbatim_and_searchable(store: ContactStore, name: str) -> None:
    await store.create(ContactInput("Somebody Else", ["+33199000001"]))
    contact = await store.create(ContactInput(name, ["+33199000002"]))
    assert (await store.get(contact.id)).name == name
    assert [found.id for found in (await store.search(name)).contacts] == [contact.id]
    assert [found.id for found in (await store.search(name[2:9].upper())).contacts] == [contact.id]
    assert (await store.search()).total == 2  # nothing dropped


async def test_wildcards_in_a_search_are_literal(store: ContactStore) -> None:
    await store.create(ContactInput("Alice", ["+33199000001"]))
    await store.create(ContactInput("50% off_shop", ["+33199000002"]))
    assert [contact.name for contact in (await store.search("%")).contacts] == ["50% off_shop"]
    assert [contact.name for contact in (await store.search("_")).contacts] == ["50% off_shop"]


async def test_an_update_replaces_the_numbers_atomically(store: ContactStore, database: Database) -> None:
    claire = await store.create(CLAIRE)
    jean = await store.create(ContactInput("Jean Dupont", ["+33199000001"]))
    with pytest.raises(NumberTaken, match="belongs to Jean Dupont"):
        await store.update(claire.id, ContactInput("Claire Martin", ["+33639980000", "+33199000001"]))
    assert (await store.get(claire.id)).numbers == ("+33612345678",)  # nothing of the refused update
    moved = await store.update(claire.id, ContactInput("Claire Martin-Roux", ["06 39 98 00 00"], company="Dupont SA"))
    assert (moved.name, moved.numbers, moved.email, moved.language) == (
        "Claire Martin-Roux", ("+33639980000",), "", None)
    assert await store.update(jean.id, ContactInput("Jean Dupont", ["+33199000001", "06 12 34 56 78"]))
    assert await count(database, ContactNumber) == 3
    with pytest.raises(ContactNotFound, match="no contact 999"):
        await store.update(999, CLAIRE)


async def test_a_deleted_contact_frees_its_numbers(store: ContactStore, database: Database) -> None:
    claire = await store.create(CLAIRE)
    await store.delete(claire.id)
    assert await count(database, ContactNumber) == 0
    assert not (await CallerDirectory(database, "FR").lookup("0612345678", MONDAY_10)).known
    with pytest.raises(ContactNotFound):
        await store.get(claire.id)
    with pytest.raises(ContactNotFound):
        await store.delete(claire.id)
    assert (await store.create(CLAIRE)).numbers == ("+33612345678",)


async def test_companies_are_listed_created_and_updated(store: ContactStore, database: Database) -> None:
    await store.create(CLAIRE)
    acme = await store.create_company("  Acme ", "platinum", vip=True)
    assert (acme.name, acme.contract_level, acme.vip) == ("Acme", "platinum", True)
    assert [(company.name, company.contacts) for company in await store.list_companies()] == [
        ("Acme", 0), ("Dupont SA", 1)]
    with pytest.raises(CompanyExists, match="a company named 'Acme' already exists"):
        await store.create_company("Acme")
    with pytest.raises(ContactInvalid, match="'diamond' is not one of"):
        await store.create_company("Other", "diamond")
    dupont = next(company for company in await store.list_companies() if company.name == "Dupont SA")
    with pytest.raises(CompanyExists):
        await store.update_company(dupont.id, name="Acme")
    updated = await store.update_company(dupont.id, contract_level="platinum", vip=True)
    assert (updated.name, updated.contract_level, updated.vip) == ("Dupont SA", "platinum", True)
    profile = await CallerDirectory(database, "FR").lookup("+33612345678", MONDAY_10)
    assert (profile.contract_level, profile.vip) == ("platinum", True)
    assert (await store.update_company(dupont.id, name="Dupont & Fils")).name == "Dupont & Fils"
    assert (await store.get_company(dupont.id)).name == "Dupont & Fils"
    with pytest.raises(CompanyNotFound, match="no company 999"):
        await store.update_company(999, vip=False)
