"""Database access: SQLAlchemy 2 async engine, models and Alembic migrations."""

from cti.db.engine import Database, make_database, run_with_database

__all__ = ["Database", "make_database", "run_with_database"]
