"""Database access: SQLAlchemy 2 async engine, models and Alembic migrations."""

from cti.db.engine import (
    Database,
    DatabaseUnavailable,
    is_unavailable,
    make_database,
    run_with_database,
    unavailable_raised,
)

__all__ = ["Database", "DatabaseUnavailable", "is_unavailable", "make_database", "run_with_database",
           "unavailable_raised"]
