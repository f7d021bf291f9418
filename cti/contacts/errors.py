"""Contacts errors with stable codes; the HTTP layer maps each to a status, the CLI prints its message."""

from __future__ import annotations

from dataclasses import dataclass

from cti.errors import CtiError, InvalidInput


class ContactInvalid(InvalidInput):
    """A contact or company refused; ``errors`` names every field to fix at once."""

    code = "contacts.invalid"


class CompanyExists(ContactInvalid):
    """A second company with a name already used (names are unique: imports and the API find companies by name)."""

    code = "contacts.company_exists"


class ContactNotFound(CtiError):
    code = "contacts.not_found"


class CompanyNotFound(ContactNotFound):
    code = "contacts.company_not_found"


class NumberTaken(CtiError):
    """A number belongs to one contact only, so a caller's screen pop is never ambiguous."""

    code = "contacts.number_taken"

    def __init__(self, number: str, owner_id: int, owner_name: str) -> None:
        super().__init__(f"{number} already belongs to {owner_name} (contact {owner_id})")
        self.number, self.owner_id, self.owner_name = number, owner_id, owner_name


@dataclass(frozen=True)
class RowError:
    """One refused CSV row: its line in the file (1 is the header) and why."""

    line: int
    message: str


class CsvInvalid(CtiError):
    """A CSV import refused as a whole: nothing was written; ``errors`` lists every bad row."""

    code = "contacts.csv_invalid"

    def __init__(self, errors: list[RowError]) -> None:
        shown = "; ".join(f"line {error.line}: {error.message}" for error in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} bad row(s), nothing imported: {shown}{more}")
        self.errors = errors


class CsvTooLarge(CtiError):
    code = "contacts.csv_too_large"


class ImportConflict(CtiError):
    """Someone changed the contacts while an import was being written; running it again is safe."""

    code = "contacts.import_conflict"
