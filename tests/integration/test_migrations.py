"""Alembic migrations on SQLite and PostgreSQL: upgrade, downgrade, and the ORM matching the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import stackyard.auth.orm
import stackyard.exports.orm
import stackyard.inventory.orm
import stackyard.jobs.orm
import stackyard.pricing.orm
import stackyard.quotas.orm
from stackyard.db.base import Base
from stackyard.db.engine import make_engine
from stackyard.db.migrate import current_revision, downgrade, head_revision, upgrade
from support.postgres import temporary_database

# Imported for their tables on Base.metadata.
assert stackyard.auth.orm and stackyard.pricing.orm and stackyard.jobs.orm and stackyard.quotas.orm
assert stackyard.exports.orm and stackyard.inventory.orm


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'stackyard.db'}")
        yield made
        made.dispose()
        return
    with temporary_database("stackyard_migrations") as url:
        made = make_engine(url)
        yield made
        made.dispose()


def test_upgrade_reaches_head_and_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert diff == [], f"ORM models and migrations disagree: {diff}"


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    upgrade(engine)
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert {"price_books", "api_keys", "exports"} <= set(inspect(engine).get_table_names())


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
