"""Alembic environment: runs on the engine handed over by stackyard.db.migrate (never from alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from stackyard.db.base import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through `stackyard db upgrade`, which supplies the engine")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
