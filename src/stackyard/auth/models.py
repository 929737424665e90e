"""Who is calling: roles, principals, login requests and API key views (pure: no framework, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from stackyard.errors import PermissionDenied


class Role(StrEnum):
    """What a caller may do: `admin` everything; `member` read and act within its own project only."""

    ADMIN = "admin"
    MEMBER = "member"


class AuthMethod(StrEnum):
    """How a caller proved who it is."""

    BEARER = "bearer"  # a stackyard JWT from POST /api/v1/auth/tokens
    KEYSTONE_TOKEN = "keystone_token"  # noqa: S105 (a method name, not a secret) a Keystone token in X-Auth-Token
    API_KEY = "api_key"  # a stackyard API key
    LOCAL = "local"  # a command run on the server itself (`stackyard apikeys ...`), no credentials


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `project_id` is None only for admins (admin API keys, system scope)."""

    subject: str  # the Keystone user id, "apikey:<key id>" or "cli:<local user>"
    name: str
    role: Role
    project_id: str | None
    project_name: str | None
    method: AuthMethod
    expires_at: datetime | None  # when the credential stops being valid; None: never (an API key)
    keystone_token: str | None = field(default=None, repr=False)  # None for API keys and the CLI

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_access_project(self, project_id: str) -> bool:
        """Admins reach every project; members only their own."""
        return self.is_admin or (self.project_id is not None and self.project_id == project_id)


# Keystone's default roles imply each other (admin -> member -> reader) and tokens list implied roles too.
_ROLE_BY_KEYSTONE_NAME = (("admin", Role.ADMIN), ("member", Role.MEMBER))


def role_from_keystone(roles: Sequence[str]) -> Role:
    """The strongest stackyard role among Keystone role names; PermissionDenied when there is none."""
    names = {role.lower() for role in roles}
    for keystone_name, role in _ROLE_BY_KEYSTONE_NAME:
        if keystone_name in names:
            return role
    held = ", ".join(sorted(names)) or "none"
    raise PermissionDenied(
        f"stackyard needs the Keystone role admin or member on the project; roles held: {held}"
    )


@dataclass(frozen=True)
class PasswordLogin:
    """Keystone password credentials, scoped to a project by name or id."""

    username: str
    password: str = field(repr=False)
    project_name: str | None = None
    project_id: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


@dataclass(frozen=True)
class AppCredentialLogin:
    """A Keystone application credential, by id, or by name plus its user's name and domain."""

    secret: str = field(repr=False)
    credential_id: str | None = None
    name: str | None = None
    username: str | None = None
    user_domain_name: str = "Default"


@dataclass(frozen=True)
class IssuedLogin:
    """A bearer token handed out for a Keystone login, and who it stands for."""

    token: str = field(repr=False)
    expires_at: datetime
    principal: Principal


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listed: everything but the key itself (which is stored only as a hash)."""

    id: str
    name: str
    prefix: str  # the public part of the key (`sy_<prefix>_...`), to recognise it in a list
    role: Role
    project_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def is_active(self, now: datetime) -> bool:
        return not self.is_revoked and not self.is_expired(now)


@dataclass(frozen=True)
class CreatedApiKey:
    """A new API key: `key` is shown once, to its creator, and never again."""

    info: ApiKeyInfo
    key: str = field(repr=False)
