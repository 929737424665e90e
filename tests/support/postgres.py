"""A throwaway PostgreSQL database on the machine's server, for tests that need the real thing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.orm import Session, sessionmaker

from stackyard.db.engine import make_engine, session_factory
from stackyard.db.migrate import upgrade

# The server tests use; STACKYARD_TEST_PG_URL points them at another one.
ADMIN_URL = os.environ.get("STACKYARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _sqlalchemy_url(libpq_url: str) -> str:
    return libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def temporary_database(prefix: str = "stackyard_test") -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards.

    An unreachable server raises (the test fails loudly; it is never skipped).
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise AssertionError(
            f"PostgreSQL at {ADMIN_URL} is needed by this test and unreachable: {exc}"
        ) from exc
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield _sqlalchemy_url(f"{base}/{name}")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextmanager
def migrated_database(prefix: str = "stackyard_test") -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A temporary database upgraded to the newest migration: its URL and a session factory."""
    with temporary_database(prefix) as url:
        engine = make_engine(url)
        upgrade(engine)
        try:
            yield url, session_factory(engine)
        finally:
            engine.dispose()
