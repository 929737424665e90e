"""API keys on real databases: a migrated SQLite file and the machine's PostgreSQL (never skipped)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stackyard.auth.apikeys import ApiKeyService, hash_api_key
from stackyard.auth.models import AuthMethod, Principal, Role
from stackyard.auth.orm import ApiKeyRecord
from stackyard.auth.repository import ApiKeyRepository
from stackyard.cloud.clock import FakeClock
from stackyard.db.engine import make_engine, session_factory, transaction
from stackyard.db.migrate import upgrade
from stackyard.errors import Unauthenticated, ValidationError

POSTGRES_URL = os.environ.get(
    "STACKYARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ADMIN = Principal("cli:ops", "ops", Role.ADMIN, None, None, AuthMethod.LOCAL, None)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh, uniquely named database on the local PostgreSQL; dropped afterwards. Unreachable: error."""
    server = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"stackyard_test_{uuid.uuid4().hex[:12]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stackyard.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM api_keys"))
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_create_authenticate_revoke(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    service = ApiKeyService(sessions, clock)
    created = service.create_api_key(ADMIN, "nightly export", Role.MEMBER, "0123456789abcdef")
    principal = service.authenticate_api_key(created.key)
    assert principal.role is Role.MEMBER and principal.project_id == "0123456789abcdef"
    assert principal.subject == f"apikey:{created.info.id}" and principal.name == "nightly export"
    listed = service.list_api_keys(ADMIN)
    assert [info.id for info in listed] == [created.info.id]
    assert listed[0].created_at == clock.now() and listed[0].created_at.tzinfo is not None
    service.revoke_api_key(ADMIN, created.info.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate_api_key(created.key)


def test_a_revoke_applies_at_once_to_another_replica(
    database_url: str, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    replica_a = ApiKeyService(sessions, clock)
    other_engine = make_engine(database_url)  # a second process's own engine and pool
    try:
        replica_b = ApiKeyService(session_factory(other_engine), clock)
        created = replica_a.create_api_key(ADMIN, "ci", Role.ADMIN)
        assert replica_b.authenticate_api_key(created.key).role is Role.ADMIN
        replica_a.revoke_api_key(ADMIN, created.info.id)
        with pytest.raises(Unauthenticated, match="revoked"):
            replica_b.authenticate_api_key(created.key)
    finally:
        other_engine.dispose()


def test_expired_keys_are_unauthenticated(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    service = ApiKeyService(sessions, clock)
    created = service.create_api_key(
        ADMIN, "short-lived", Role.ADMIN, expires_at=clock.now() + timedelta(days=1)
    )
    assert service.list_api_keys(ADMIN)[0].expires_at == clock.now() + timedelta(days=1)
    service.authenticate_api_key(created.key)
    clock.advance(86_400)
    with pytest.raises(Unauthenticated, match="expired"):
        service.authenticate_api_key(created.key)


def test_a_member_key_needs_a_project(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    service = ApiKeyService(sessions, clock)
    with pytest.raises(ValidationError) as caught:
        service.create_api_key(ADMIN, "no project", Role.MEMBER)
    assert caught.value.field == "project_id"
    assert service.list_api_keys(ADMIN) == []


def test_only_the_hash_is_stored_and_prefixes_are_unique(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = ApiKeyService(sessions, clock)
    created = service.create_api_key(ADMIN, "ci", Role.ADMIN)
    with transaction(sessions) as session:
        record = ApiKeyRepository(session).by_id(created.info.id)
        assert record is not None
        assert record.key_hash == hash_api_key(created.key) and created.key not in repr(record)
        assert ApiKeyRepository(session).by_prefix(created.info.prefix) is record
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        ApiKeyRepository(session).add(
            ApiKeyRecord(
                id=str(uuid.uuid4()),
                name="clash",
                prefix=created.info.prefix,
                key_hash="0" * 64,
                role=Role.ADMIN.value,
                project_id=None,
                created_by="test",
                created_at=clock.now(),
                expires_at=None,
                revoked_at=None,
            )
        )
