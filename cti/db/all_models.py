"""Imports every package's models so ``Base.metadata`` knows all tables (Alembic, tests)."""

from cti.db import models as core_models
from tickets import models as ticket_models

__all__ = ["core_models", "ticket_models"]
