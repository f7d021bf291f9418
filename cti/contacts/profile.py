"""What the IVR and the screen pop know about a caller once their number has been looked up."""

from __future__ import annotations

from dataclasses import dataclass

# What Asterisk and carriers put in the caller ID when the number is withheld.
WITHHELD = frozenset({"", "anonymous", "unknown", "restricted", "private", "unavailable", "0"})


@dataclass(frozen=True)
class CallerProfile:
    """``number`` is E.164 when it could be normalised, else the caller ID as received."""

    number: str
    anonymous: bool = False
    blocked: bool = False
    contact_id: int | None = None
    contact_name: str = ""
    company_name: str = ""
    contract_level: str | None = None
    vip: bool = False
    language: str | None = None

    @property
    def known(self) -> bool:
        return self.contact_id is not None

    def classes(self) -> set[str]:
        """The caller classes flow conditions test: known/unknown, vip, anonymous, blocked."""
        found = {"known" if self.known else "unknown"}
        for name, present in (("vip", self.vip), ("anonymous", self.anonymous), ("blocked", self.blocked)):
            if present:
                found.add(name)
        return found


def is_withheld(caller_id: str) -> bool:
    return caller_id.strip().lower() in WITHHELD
