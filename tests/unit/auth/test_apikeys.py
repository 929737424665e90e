"""API keys: format, hashing, and the create/authenticate/revoke/expire rules (on a throwaway SQLite)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stackyard.auth.apikeys import (
    ApiKeyService,
    generate_api_key,
    hash_api_key,
    is_api_key,
    key_matches,
    parse_api_key,
)
from stackyard.auth.models import AuthMethod, Principal, Role
from stackyard.auth.orm import ApiKeyRecord
from stackyard.cloud.clock import FakeClock
from stackyard.errors import NotFound, PermissionDenied, Unauthenticated, ValidationError

ADMIN = Principal("cli:root", "root", Role.ADMIN, None, None, AuthMethod.LOCAL, None)
MEMBER = Principal("u-demo", "demo", Role.MEMBER, "p-demo", "demo", AuthMethod.BEARER, None)


@pytest.fixture
def service(sessions: sessionmaker[Session], clock: FakeClock) -> ApiKeyService:
    return ApiKeyService(sessions, clock)


def test_key_format() -> None:
    key = generate_api_key()
    assert re.fullmatch(r"sy_[0-9a-f]{8}_[A-Za-z0-9_\-]{43}", key)
    parsed = parse_api_key(key)
    assert key == f"sy_{parsed.prefix}_{parsed.secret}"
    assert is_api_key(key) and not is_api_key("eyJhbGciOi.x.y")
    assert len({generate_api_key() for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "key",
    [
        "",
        "sy_",
        "sy_0123abcd",
        "sy_0123abcd_short",
        "xy_0123abcd_" + "a" * 43,
        "sy_0123ABCD_" + "a" * 43,
        "sy_0123abc_" + "a" * 43,
        " sy_0123abcd_" + "a" * 43,
        "sy_0123abcd_" + "a" * 42 + "!",
    ],
)
def test_malformed_keys_are_unauthenticated(key: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        parse_api_key(key)


def test_hash_is_sha256_of_the_whole_key_and_compared_in_constant_time() -> None:
    key = generate_api_key()
    digest = hash_api_key(key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert key_matches(key, digest)
    assert not key_matches(key[:-1] + ("A" if key[-1] != "A" else "B"), digest)


def test_create_stores_only_the_hash_and_authenticates(
    service: ApiKeyService, sessions: sessionmaker[Session]
) -> None:
    created = service.create_api_key(ADMIN, "ci deploys", Role.MEMBER, "p-demo")
    assert created.info.role is Role.MEMBER and created.info.created_by == "cli:root"
    assert created.key not in repr(created)
    with sessions() as session:
        record = session.scalars(select(ApiKeyRecord)).one()
        stored = [str(value) for value in vars(record).values()]
    assert not any(created.key in value or parse_api_key(created.key).secret in value for value in stored)
    assert record.key_hash == hash_api_key(created.key)
    principal = service.authenticate_api_key(created.key)
    assert principal.subject == f"apikey:{created.info.id}"
    assert principal.role is Role.MEMBER and principal.project_id == "p-demo"
    assert principal.method is AuthMethod.API_KEY and principal.keystone_token is None


def test_a_wrong_secret_with_a_known_prefix_is_rejected(service: ApiKeyService) -> None:
    key = service.create_api_key(ADMIN, "ci", Role.ADMIN).key
    parsed = parse_api_key(key)
    with pytest.raises(Unauthenticated, match="invalid API key"):
        service.authenticate_api_key(f"sy_{parsed.prefix}_{'Z' * 43}")
    with pytest.raises(Unauthenticated, match="invalid API key"):
        service.authenticate_api_key(generate_api_key())


def test_revoked_keys_stop_working_and_revoke_is_idempotent(service: ApiKeyService, clock: FakeClock) -> None:
    created = service.create_api_key(ADMIN, "ci", Role.ADMIN)
    clock.advance(10)
    revoked = service.revoke_api_key(ADMIN, created.info.id)
    assert revoked.revoked_at == clock.now() and revoked.is_revoked
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate_api_key(created.key)
    clock.advance(10)
    again = service.revoke_api_key(ADMIN, created.info.id)
    assert again.revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        service.revoke_api_key(ADMIN, "no-such-key")


def test_expired_keys_stop_working(service: ApiKeyService, clock: FakeClock) -> None:
    created = service.create_api_key(ADMIN, "ci", Role.ADMIN, expires_at=clock.now() + timedelta(hours=1))
    assert service.authenticate_api_key(created.key).expires_at == created.info.expires_at
    clock.advance(3600)
    with pytest.raises(Unauthenticated, match="expired"):
        service.authenticate_api_key(created.key)
    assert not service.list_api_keys(ADMIN)[0].is_active(clock.now())


def test_only_admins_manage_keys(service: ApiKeyService) -> None:
    created = service.create_api_key(ADMIN, "ci", Role.ADMIN)
    for attempt in (
        lambda: service.create_api_key(MEMBER, "mine", Role.MEMBER, "p-demo"),
        lambda: service.list_api_keys(MEMBER),
        lambda: service.revoke_api_key(MEMBER, created.info.id),
    ):
        with pytest.raises(PermissionDenied, match="only admins"):
            attempt()
    # A key with the admin role is an admin actor too.
    key_admin = service.authenticate_api_key(created.key)
    assert service.create_api_key(key_admin, "second", Role.MEMBER, "p1").info.created_by == key_admin.subject


def test_validation(service: ApiKeyService, clock: FakeClock) -> None:
    with pytest.raises(ValidationError) as caught:
        service.create_api_key(ADMIN, "ci", Role.MEMBER)
    assert caught.value.field == "project_id"
    with pytest.raises(ValidationError, match="project_id"):
        service.create_api_key(ADMIN, "ci", Role.ADMIN, "p-demo")
    with pytest.raises(ValidationError, match="name"):
        service.create_api_key(ADMIN, "  ", Role.ADMIN)
    with pytest.raises(ValidationError, match="expires_at"):
        service.create_api_key(ADMIN, "ci", Role.ADMIN, expires_at=clock.now())
    with pytest.raises(ValidationError, match="expires_at"):
        service.create_api_key(ADMIN, "ci", Role.ADMIN, expires_at=clock.now().replace(tzinfo=None))
    assert service.list_api_keys(ADMIN) == []


def test_list_shows_every_key_oldest_first(service: ApiKeyService, clock: FakeClock) -> None:
    first = service.create_api_key(ADMIN, "first", Role.ADMIN)
    clock.advance(1)
    second = service.create_api_key(ADMIN, "second", Role.MEMBER, "p1")
    service.revoke_api_key(ADMIN, first.info.id)
    listed = service.list_api_keys(ADMIN)
    assert [info.id for info in listed] == [first.info.id, second.info.id]
    assert listed[0].is_revoked and not listed[1].is_revoked
    assert listed[1].prefix == parse_api_key(second.key).prefix
