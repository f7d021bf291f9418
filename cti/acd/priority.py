"""A waiting caller's priority: the IVR's choice, plus the customer's contract level, plus VIP.

Higher is answered first; within one priority, first come first served. The figures are settings
(``[acd] contract_priority``, ``vip_priority``) so a help desk decides how much a platinum contract
weighs against an urgent IVR choice.
"""

from __future__ import annotations

from cti.contacts.profile import CallerProfile
from cti.settings import AcdSettings


def caller_priority(ivr_priority: int, profile: CallerProfile | None, settings: AcdSettings) -> int:
    if profile is None:
        return ivr_priority
    contract = settings.contract_priority.get(profile.contract_level or "", 0)
    return ivr_priority + contract + (settings.vip_priority if profile.vip else 0)
