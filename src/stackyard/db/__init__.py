"""The database: declarative base, engine and sessions, Alembic migrations."""
