"""API authentication against the devcloud's real Keystone: logins, token validation, bearer round trip."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from stackyard.auth.keystone_cache import KeystoneTokenCache
from stackyard.auth.models import AppCredentialLogin, AuthMethod, PasswordLogin, Role
from stackyard.auth.service import AuthService
from stackyard.auth.tokens import TokenSigner
from stackyard.cloud.clock import SystemClock
from stackyard.cloud.identity import KeystoneIdentity
from stackyard.db.engine import make_engine, session_factory
from stackyard.db.migrate import upgrade
from stackyard.devcloud.access import Credentials
from stackyard.errors import CloudError, Unauthenticated
from support.clouds import sdk_connection

pytestmark = pytest.mark.devcloud

SECRET = "integration-secret-" + "k" * 40


@pytest.fixture(scope="module")
def identity(demo_credentials: Credentials) -> Iterator[KeystoneIdentity]:
    keystone = KeystoneIdentity(demo_credentials.auth_url, timeout=30)
    yield keystone
    keystone.close()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def service(identity: KeystoneIdentity, sessions: sessionmaker[Session]) -> AuthService:
    clock = SystemClock()
    return AuthService(
        identity=identity,
        signer=TokenSigner(SECRET, clock),
        sessions=sessions,
        cache=KeystoneTokenCache(100, clock),
        clock=clock,
        token_ttl=600,
    )


@dataclass(frozen=True)
class AppCredential:
    id: str
    name: str
    secret: str


@pytest.fixture
def demo_app_credential(demo_credentials: Credentials) -> Iterator[AppCredential]:
    conn = sdk_connection(demo_credentials)
    user_id = conn.current_user_id
    created = conn.identity.create_application_credential(
        user_id, name=f"stackyard-test-{uuid.uuid4().hex[:8]}", description="stackyard auth test"
    )
    try:
        yield AppCredential(created.id, created.name, created.secret)
    finally:
        conn.identity.delete_application_credential(user_id, created.id, ignore_missing=True)
        conn.close()


def test_demo_password_login_is_a_member_of_demo(service: AuthService, demo_credentials: Credentials) -> None:
    issued = service.login(
        PasswordLogin(demo_credentials.username, demo_credentials.password, project_name="demo")
    )
    principal = issued.principal
    assert principal.role is Role.MEMBER
    assert principal.name == "demo" and principal.project_name == "demo" and principal.project_id
    assert principal.method is AuthMethod.BEARER
    now = datetime.now(UTC)
    assert now < issued.expires_at <= now + timedelta(seconds=601)
    assert demo_credentials.password not in repr(issued)


def test_admin_password_login_is_an_admin(service: AuthService, admin_credentials: Credentials) -> None:
    issued = service.login(
        PasswordLogin(admin_credentials.username, admin_credentials.password, project_name="admin")
    )
    assert issued.principal.role is Role.ADMIN and issued.principal.project_name == "admin"


def test_a_wrong_password_is_unauthenticated_and_never_echoed(
    service: AuthService, identity: KeystoneIdentity, demo_credentials: Credentials
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(Unauthenticated) as caught:
        service.login(PasswordLogin(demo_credentials.username, wrong, project_name="demo"))
    error = caught.value
    assert str(error) == "keystone rejected the credentials"
    assert wrong not in repr(error) and wrong not in str(error.args)
    # Nothing chained either: keystoneauth's exception holds the request, which holds the password.
    assert error.__cause__ is None and error.__context__ is None
    with pytest.raises(Unauthenticated):
        identity.login_password("no-such-user", wrong, project_name="demo")


def test_a_project_the_user_has_no_role_on_is_refused(
    identity: KeystoneIdentity, demo_credentials: Credentials
) -> None:
    with pytest.raises(Unauthenticated):
        identity.login_password(demo_credentials.username, demo_credentials.password, project_name="admin")


def test_application_credential_login(
    service: AuthService, demo_app_credential: AppCredential, demo_credentials: Credentials
) -> None:
    by_id = service.login(
        AppCredentialLogin(demo_app_credential.secret, credential_id=demo_app_credential.id)
    )
    assert by_id.principal.role is Role.MEMBER and by_id.principal.project_name == "demo"
    by_name = service.login(
        AppCredentialLogin(
            demo_app_credential.secret, name=demo_app_credential.name, username=demo_credentials.username
        )
    )
    assert by_name.principal.subject == by_id.principal.subject
    # The token Keystone issued for the credential validates itself too.
    assert by_id.principal.keystone_token is not None
    principal = service.authenticate_keystone_token(by_id.principal.keystone_token)
    assert principal.project_id == by_id.principal.project_id
    with pytest.raises(Unauthenticated) as caught:
        service.login(AppCredentialLogin("not-the-secret", credential_id=demo_app_credential.id))
    assert demo_app_credential.secret not in repr(caught.value)


def test_a_keystone_token_is_validated_by_keystone(
    identity: KeystoneIdentity, service: AuthService, demo_credentials: Credentials
) -> None:
    token = identity.login_password(demo_credentials.username, demo_credentials.password, project_name="demo")
    validated = identity.validate(token.token)
    assert validated.user_id == token.user_id and validated.project_id == token.project_id
    assert validated.expires_at == token.expires_at and "member" in validated.roles
    principal = service.authenticate(keystone_token=token.token)
    assert principal.method is AuthMethod.KEYSTONE_TOKEN and principal.role is Role.MEMBER
    assert principal.keystone_token == token.token
    with pytest.raises(Unauthenticated):
        identity.validate("gAAAAABnot-a-real-keystone-token-" + uuid.uuid4().hex)
    with pytest.raises(Unauthenticated):
        service.authenticate_keystone_token("garbage\nwith a newline")


def test_the_bearer_token_carries_a_working_keystone_token(
    service: AuthService, identity: KeystoneIdentity, admin_credentials: Credentials
) -> None:
    issued = service.login(
        PasswordLogin(admin_credentials.username, admin_credentials.password, project_name="admin")
    )
    other_replica = TokenSigner(SECRET, SystemClock())
    principal = other_replica.verify(issued.token)
    assert principal.role is Role.ADMIN and principal.subject == issued.principal.subject
    assert principal.keystone_token is not None and principal.keystone_token not in issued.token
    assert identity.validate(principal.keystone_token).user_id == principal.subject
    assert (
        principal.expires_at is not None
        and principal.expires_at <= identity.validate(principal.keystone_token).expires_at
    )


def test_an_unreachable_keystone_is_a_cloud_error() -> None:
    keystone = KeystoneIdentity("http://127.0.0.1:9/v3", timeout=5)
    with pytest.raises(CloudError):
        keystone.validate("gAAAAABsome-token")
    with pytest.raises(CloudError) as caught:
        keystone.login_password("demo", "s3cret-pw", project_name="demo")
    assert "s3cret-pw" not in str(caught.value)


def test_debug_logs_hold_neither_the_password_nor_the_tokens(
    service: AuthService,
    identity: KeystoneIdentity,
    demo_credentials: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = demo_credentials.password
    issued = service.login(PasswordLogin(demo_credentials.username, password, project_name="demo"))
    fresh = identity.login_password(demo_credentials.username, password, project_name="demo").token
    service.authenticate_keystone_token(fresh)  # not cached yet: a real validation round trip
    with pytest.raises(Unauthenticated):
        service.login(PasswordLogin(demo_credentials.username, "wrong-" + password, project_name="demo"))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "auth/tokens" in logged  # keystoneauth did log at debug level
    for secret in (password, fresh, issued.principal.keystone_token, issued.token):
        assert secret and secret not in logged
