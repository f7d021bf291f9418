"""Imports every package's models so ``Base.metadata`` knows all tables (Alembic, tests)."""

from cti.acd import models as acd_models
from cti.audit import models as audit_models
from cti.contacts import models as contact_models
from cti.db import models as core_models
from cti.ivr import models as ivr_models
from cti.supervision.voice_prompts import models as prompt_models
from cti.users import models as user_models
from tickets import models as ticket_models

__all__ = ["acd_models", "audit_models", "contact_models", "core_models", "ivr_models", "prompt_models",
           "ticket_models", "user_models"]
