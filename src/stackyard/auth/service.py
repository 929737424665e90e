"""Authentication for the API: Keystone logins for bearer tokens, Keystone tokens, API keys; roles.

Nothing that replicas must share is held in memory: bearer tokens are verified by signature alone,
Keystone tokens are validated by Keystone (each process caches its own answers until they expire),
and API keys are read from the database on every request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from stackyard.auth.apikeys import ApiKeyService, is_api_key
from stackyard.auth.keystone_cache import KeystoneTokenCache
from stackyard.auth.models import (
    ApiKeyInfo,
    AppCredentialLogin,
    AuthMethod,
    CreatedApiKey,
    IssuedLogin,
    PasswordLogin,
    Principal,
    Role,
    role_from_keystone,
)
from stackyard.auth.tokens import TokenSigner
from stackyard.cloud.clock import Clock
from stackyard.cloud.identity import KeystoneToken
from stackyard.errors import PermissionDenied, Unauthenticated, ValidationError


class IdentityProvider(Protocol):
    """What the service needs from Keystone; `stackyard.cloud.identity.KeystoneIdentity` is the real one."""

    def login_password(
        self,
        username: str,
        password: str,
        *,
        project_name: str | None = None,
        project_id: str | None = None,
        user_domain_name: str = "Default",
        project_domain_name: str = "Default",
    ) -> KeystoneToken: ...

    def login_application_credential(
        self,
        secret: str,
        *,
        credential_id: str | None = None,
        name: str | None = None,
        username: str | None = None,
        user_domain_name: str = "Default",
    ) -> KeystoneToken: ...

    def validate(self, token: str) -> KeystoneToken: ...


def principal_from_keystone(token: KeystoneToken, method: AuthMethod) -> Principal:
    """The caller a validated Keystone token stands for; PermissionDenied without a usable role.

    The admin role counts only on Keystone's admin project (`is_admin_project`, true on every project
    unless the deployment names one); elsewhere an admin acts as a member of that project.
    """
    roles = token.roles if token.is_admin_project else [r for r in token.roles if r.lower() != "admin"]
    role = role_from_keystone(roles)
    if role is Role.MEMBER and token.project_id is None:
        raise PermissionDenied("a member needs a project-scoped Keystone token")
    return Principal(
        subject=token.user_id,
        name=token.user_name,
        role=role,
        project_id=token.project_id,
        project_name=token.project_name,
        method=method,
        expires_at=token.expires_at,
        keystone_token=token.token,
    )


class AuthService:
    """Turns credentials into a Principal, and lets admins manage API keys."""

    def __init__(
        self,
        identity: IdentityProvider,
        signer: TokenSigner,
        sessions: sessionmaker[Session],
        cache: KeystoneTokenCache,
        clock: Clock,
        token_ttl: float,
    ) -> None:
        if token_ttl <= 0:
            raise ValidationError("token_ttl", f"must be positive seconds, got {token_ttl}")
        self._identity = identity
        self._signer = signer
        self._cache = cache
        self._clock = clock
        self._token_ttl = token_ttl
        self._api_keys = ApiKeyService(sessions, clock)

    # ----------------------------------------------------------------------------------------------
    # Logging in and authenticating
    # ----------------------------------------------------------------------------------------------

    def login(self, request: PasswordLogin | AppCredentialLogin) -> IssuedLogin:
        """Exchange Keystone credentials for a bearer token (valid token_ttl, never past Keystone's expiry).

        Unauthenticated when Keystone rejects the credentials; PermissionDenied without admin or member.
        """
        if isinstance(request, PasswordLogin):
            token = self._identity.login_password(
                request.username,
                request.password,
                project_name=request.project_name,
                project_id=request.project_id,
                user_domain_name=request.user_domain_name,
                project_domain_name=request.project_domain_name,
            )
        else:
            token = self._identity.login_application_credential(
                request.secret,
                credential_id=request.credential_id,
                name=request.name,
                username=request.username,
                user_domain_name=request.user_domain_name,
            )
        principal = principal_from_keystone(token, AuthMethod.BEARER)
        self._cache.put(token)  # the same Keystone token sent in X-Auth-Token needs no second round trip
        issued = self._signer.issue(principal, self._token_ttl)
        return IssuedLogin(issued.token, issued.expires_at, principal)

    def authenticate_bearer(self, token: str) -> Principal:
        """The principal of a bearer token this service (or any replica with the same key) issued."""
        return self._signer.verify(token)

    def authenticate_keystone_token(self, token: str) -> Principal:
        """The principal of a Keystone token, validated by Keystone once and then cached until it expires."""
        validated = self._cache.get(token)
        if validated is None:
            validated = self._identity.validate(token)
            if validated.is_expired(self._clock.now()):
                raise Unauthenticated("Keystone token has expired")
            self._cache.put(validated)
        return principal_from_keystone(validated, AuthMethod.KEYSTONE_TOKEN)

    def authenticate_api_key(self, key: str) -> Principal:
        """The principal of an API key, read from the database each time (revokes apply at once)."""
        return self._api_keys.authenticate_api_key(key)

    def authenticate(
        self, *, bearer: str | None = None, keystone_token: str | None = None, api_key: str | None = None
    ) -> Principal:
        """One entry point for the API: exactly one credential. A bearer value shaped like an API key
        (`sy_...`) is taken as one, so automation can send its key in `Authorization: Bearer`."""
        given = [value for value in (bearer, keystone_token, api_key) if value]
        if not given:
            raise Unauthenticated(
                "no credentials: send a bearer token or API key in the Authorization header,"
                " a Keystone token in X-Auth-Token, or an API key in X-API-Key"
            )
        if len(given) > 1:
            raise Unauthenticated("send one kind of credentials, not several")
        if api_key:
            return self.authenticate_api_key(api_key)
        if keystone_token:
            return self.authenticate_keystone_token(keystone_token)
        assert bearer is not None
        if is_api_key(bearer):
            return self.authenticate_api_key(bearer)
        return self.authenticate_bearer(bearer)

    # ----------------------------------------------------------------------------------------------
    # API keys (admins only)
    # ----------------------------------------------------------------------------------------------

    def create_api_key(
        self,
        actor: Principal,
        name: str,
        role: Role,
        project_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> CreatedApiKey:
        return self._api_keys.create_api_key(actor, name, role, project_id, expires_at)

    def list_api_keys(self, actor: Principal) -> list[ApiKeyInfo]:
        return self._api_keys.list_api_keys(actor)

    def revoke_api_key(self, actor: Principal, key_id: str) -> ApiKeyInfo:
        return self._api_keys.revoke_api_key(actor, key_id)
