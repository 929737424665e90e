"""AuthService with a scripted Keystone: logins, the token cache, the credential dispatch, API keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session, sessionmaker

from stackyard.auth.keystone_cache import KeystoneTokenCache
from stackyard.auth.models import AppCredentialLogin, AuthMethod, PasswordLogin, Principal, Role
from stackyard.auth.service import AuthService
from stackyard.auth.tokens import TokenSigner
from stackyard.cloud.clock import FakeClock
from stackyard.cloud.identity import KeystoneToken
from stackyard.errors import PermissionDenied, Unauthenticated

SECRET = "unit-test-secret-" + "x" * 40


@dataclass
class ScriptedKeystone:
    """Answers like KeystoneIdentity from a table of tokens; records what it was asked."""

    tokens: dict[str, KeystoneToken] = field(default_factory=dict)
    logins: dict[tuple[str, str], KeystoneToken] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def login_password(
        self,
        username: str,
        password: str,
        *,
        project_name: str | None = None,
        project_id: str | None = None,
        user_domain_name: str = "Default",
        project_domain_name: str = "Default",
    ) -> KeystoneToken:
        self.calls.append(f"password {username} {project_name}")
        if (username, password) not in self.logins:
            raise Unauthenticated("keystone rejected the credentials")
        return self.logins[(username, password)]

    def login_application_credential(
        self,
        secret: str,
        *,
        credential_id: str | None = None,
        name: str | None = None,
        username: str | None = None,
        user_domain_name: str = "Default",
    ) -> KeystoneToken:
        self.calls.append(f"appcred {credential_id}")
        if (str(credential_id), secret) not in self.logins:
            raise Unauthenticated("keystone rejected the credentials")
        return self.logins[(str(credential_id), secret)]

    def validate(self, token: str) -> KeystoneToken:
        self.calls.append("validate")
        if token not in self.tokens:
            raise Unauthenticated("Keystone does not accept the token")
        return self.tokens[token]


@pytest.fixture
def keystone() -> ScriptedKeystone:
    return ScriptedKeystone()


@pytest.fixture
def service(keystone: ScriptedKeystone, sessions: sessionmaker[Session], clock: FakeClock) -> AuthService:
    return AuthService(
        identity=keystone,
        signer=TokenSigner(SECRET, clock),
        sessions=sessions,
        cache=KeystoneTokenCache(100, clock),
        clock=clock,
        token_ttl=900,
    )


def test_password_login_issues_a_bearer_token_carrying_the_keystone_token(
    service: AuthService, keystone: ScriptedKeystone, make_token: Callable[..., KeystoneToken]
) -> None:
    keystone.logins[("demo", "pw")] = make_token(token="ks-demo", lifetime=3600)
    issued = service.login(PasswordLogin("demo", "pw", project_name="demo"))
    assert issued.principal.role is Role.MEMBER and issued.principal.project_id == "p-demo"
    assert "ks-demo" not in repr(issued)
    principal = service.authenticate_bearer(issued.token)
    assert principal.keystone_token == "ks-demo" and principal.method is AuthMethod.BEARER
    assert principal == service.authenticate(bearer=issued.token)
    # The Keystone token itself is cached by the login: no validation round trip.
    assert service.authenticate_keystone_token("ks-demo").method is AuthMethod.KEYSTONE_TOKEN
    assert keystone.calls == ["password demo demo"]


def test_application_credential_login(
    service: AuthService, keystone: ScriptedKeystone, make_token: Callable[..., KeystoneToken]
) -> None:
    keystone.logins[("ac-1", "s3cret")] = make_token(token="ks-ac", roles=("admin", "member"))
    issued = service.login(AppCredentialLogin("s3cret", credential_id="ac-1"))
    assert issued.principal.role is Role.ADMIN
    with pytest.raises(Unauthenticated):
        service.login(AppCredentialLogin("wrong", credential_id="ac-1"))


def test_a_reader_gets_no_token(
    service: AuthService, keystone: ScriptedKeystone, make_token: Callable[..., KeystoneToken]
) -> None:
    keystone.logins[("viewer", "pw")] = make_token(roles=("reader",))
    with pytest.raises(PermissionDenied):
        service.login(PasswordLogin("viewer", "pw", project_name="demo"))


def test_keystone_tokens_are_validated_once_then_cached_until_expiry(
    service: AuthService,
    keystone: ScriptedKeystone,
    clock: FakeClock,
    make_token: Callable[..., KeystoneToken],
) -> None:
    keystone.tokens["ks"] = make_token(token="ks", lifetime=120)
    for _ in range(5):
        assert service.authenticate(keystone_token="ks").subject == "u-demo"
    assert keystone.calls == ["validate"]
    clock.advance(120)
    del keystone.tokens["ks"]  # expired: Keystone now answers 404
    with pytest.raises(Unauthenticated):
        service.authenticate_keystone_token("ks")
    assert keystone.calls == ["validate", "validate"]


def test_the_dispatch_takes_exactly_one_credential(service: AuthService) -> None:
    admin = Principal("cli:root", "root", Role.ADMIN, None, None, AuthMethod.LOCAL, None)
    created = service.create_api_key(admin, "ci", Role.MEMBER, "p-1")
    assert service.authenticate(bearer=created.key).subject == f"apikey:{created.info.id}"
    assert service.authenticate(api_key=created.key).project_id == "p-1"
    with pytest.raises(Unauthenticated, match="no credentials"):
        service.authenticate()
    with pytest.raises(Unauthenticated, match="one kind"):
        service.authenticate(bearer="x", keystone_token="y")
    service.revoke_api_key(admin, created.info.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate(bearer=created.key)
    assert [info.id for info in service.list_api_keys(admin)] == [created.info.id]
