"""Keystone as the API's identity provider: logins (password, application credential), token validation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from keystoneauth1 import access
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from stackyard.cloud.errormap import http_status_of, translate_error
from stackyard.errors import (
    CloudError,
    Forbidden,
    StackyardError,
    Unauthenticated,
    Unavailable,
    ValidationError,
)

__all__ = ["KeystoneIdentity", "KeystoneToken"]

_LOG = logging.getLogger(__name__)
_SERVICE = "identity"
# Keystone answers a bad password, an unknown user or application credential, a disabled user, an
# expired password or a missing role on the project all with 401; 404 for an unknown project or domain.
_LOGIN_REJECTED = frozenset({401, 403, 404})
# Validation: 404 for an unknown, expired or revoked subject token, 401 when the token cannot authenticate
# the request itself. A 403 means the deployment's policy forbids self-validation: not the caller's fault.
_TOKEN_REJECTED = frozenset({401, 404})


@dataclass(frozen=True)
class KeystoneToken:
    """A Keystone token and what Keystone says about it; the token itself never appears in the repr."""

    token: str = field(repr=False)
    expires_at: datetime  # timezone-aware
    user_id: str
    user_name: str
    user_domain_id: str | None
    project_id: str | None  # None unless the token is project-scoped
    project_name: str | None
    project_domain_id: str | None
    roles: tuple[str, ...]  # role names, implied roles included (Keystone expands them)
    is_admin_project: bool = True  # Keystone's admin_project_* setting; True when it is not configured
    is_system_scoped: bool = False
    audit_id: str | None = None  # safe to log; identifies the token without revealing it
    application_credential_id: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class KeystoneIdentity:
    """Keystone v3 calls made on behalf of API callers; needs no service credentials of its own.

    `auth_url` is Keystone's v3 endpoint (`/v3` is appended when missing). One keystoneauth session is
    kept for connection reuse; it holds no credentials, so one instance serves every caller and thread.
    """

    def __init__(self, auth_url: str, *, verify: bool | str = True, timeout: float = 30.0) -> None:
        if not auth_url.startswith(("http://", "https://")):
            raise ValidationError("auth_url", "expected an http(s) URL of Keystone's v3 endpoint")
        if timeout <= 0:
            raise ValidationError("timeout", f"must be positive seconds, got {timeout}")
        base = auth_url.rstrip("/")
        self.auth_url = base if base.endswith("/v3") else f"{base}/v3"
        if verify is False:
            _LOG.warning("TLS certificate verification is OFF for Keystone at %s", self.auth_url)
        self._session = ksa_session.Session(verify=verify, timeout=timeout)

    def __repr__(self) -> str:
        return f"KeystoneIdentity({self.auth_url!r})"

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
        """A project-scoped token for a user's password; name the project by name or by id (not both)."""
        if not username:
            raise ValidationError("username", "must not be empty")
        if (project_name is None) == (project_id is None):
            raise ValidationError("project", "give exactly one of project_name and project_id")
        plugin = v3.Password(
            auth_url=self.auth_url,
            username=username,
            password=password,
            user_domain_name=user_domain_name,
            project_id=project_id,
            project_name=project_name,
            project_domain_name=project_domain_name if project_name is not None else None,
            include_catalog=False,
        )
        return self._login(plugin)

    def login_application_credential(
        self,
        secret: str,
        *,
        credential_id: str | None = None,
        name: str | None = None,
        username: str | None = None,
        user_domain_name: str = "Default",
    ) -> KeystoneToken:
        """A token for an application credential, named by id, or by name plus its user's name and domain.

        The token is scoped to the project the credential was created in, with the credential's roles.
        """
        if credential_id is None and (not name or not username):
            raise ValidationError(
                "application_credential", "give the credential's id, or its name and the user's name"
            )
        plugin = v3.ApplicationCredential(
            auth_url=self.auth_url,
            application_credential_secret=secret,
            application_credential_id=credential_id,
            application_credential_name=None if credential_id is not None else name,
            username=None if credential_id is not None else username,
            user_domain_name=None if credential_id is not None else user_domain_name,
            include_catalog=False,
        )
        return self._login(plugin)

    def validate(self, token: str) -> KeystoneToken:
        """What Keystone says about `token`; Unauthenticated when it is unknown, expired or revoked.

        NOTE: the token validates itself (X-Auth-Token = X-Subject-Token): Keystone's default policy for
        identity:validate_token allows the token's own user (rule `token_subject`), so no service
        credentials are needed. https://docs.openstack.org/api-ref/identity/v3/#validate-and-show-information-for-token
        """
        if not token or not token.isascii() or not token.isprintable():
            raise Unauthenticated("malformed Keystone token")
        try:
            response = self._session.get(
                f"{self.auth_url}/auth/tokens",
                params={"nocatalog": "1"},
                headers={"X-Auth-Token": token, "X-Subject-Token": token, "Accept": "application/json"},
                authenticated=False,
                raise_exc=True,
                log=False,
            )
            info = access.create(resp=response, auth_token=token)
        except _FAILURES as exc:
            error = _translate(exc, _TOKEN_REJECTED, "Keystone does not accept the token")
        else:
            return _token_from(info)
        raise error  # outside the handler, so keystoneauth's exception is not even its __context__

    def close(self) -> None:
        self._session.session.close()

    def _login(self, plugin: v3.Auth) -> KeystoneToken:
        try:
            info = plugin.get_auth_ref(self._session)
        except _FAILURES as exc:
            error = _translate(exc, _LOGIN_REJECTED, "keystone rejected the credentials")
        else:
            return _token_from(info)
        raise error  # outside the handler, so keystoneauth's exception is not even its __context__


# What a Keystone call can fail with: keystoneauth's errors, requests' (a body that is not JSON is also a
# ValueError), and socket errors that slip through.
_FAILURES = (ksa_exc.ClientException, requests.exceptions.RequestException, ValueError, OSError)


def _translate(exc: Exception, rejected_statuses: frozenset[int], rejected: str) -> StackyardError:
    """Our error for a failed Keystone call. Callers raise it with no link to `exc`: keystoneauth's
    exceptions carry the response, whose request carries the password or the token."""
    status = http_status_of(exc)
    if status in rejected_statuses:
        return Unauthenticated(rejected)
    if status == 403:
        return Forbidden(
            "identity: Keystone's policy does not let a token validate itself (identity:validate_token "
            "needs rule:token_subject)",
            service=_SERVICE,
            status_code=status,
        )
    if status == 400:
        return ValidationError("credentials", "Keystone rejected the request as malformed")
    if status is None and isinstance(exc, ValueError):
        return Unavailable("identity: Keystone sent an answer that is not a token", service=_SERVICE)
    error = translate_error(exc, _SERVICE)
    if type(error) is CloudError:
        return Unavailable(error.message, service=_SERVICE, status_code=status)
    return error


def _token_from(info: access.AccessInfo) -> KeystoneToken:
    token, expires, user_id = info.auth_token, info.expires, info.user_id
    if not token or expires is None or not user_id:
        raise Unavailable(
            "identity: Keystone's answer lacks the token, its expiry or its user", service=_SERVICE
        )
    application_credential_id = (
        info.application_credential_id if isinstance(info, access.AccessInfoV3) else None
    )
    return KeystoneToken(
        token=token,
        expires_at=expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC),
        user_id=user_id,
        user_name=info.username or user_id,
        user_domain_id=info.user_domain_id,
        project_id=info.project_id,
        project_name=info.project_name,
        project_domain_id=info.project_domain_id,
        roles=tuple(info.role_names or ()),
        is_admin_project=info.is_admin_project,
        is_system_scoped=info.system_scoped,
        audit_id=info.audit_id,
        application_credential_id=application_credential_id,
    )
