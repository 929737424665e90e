"""API keys for automation: the `sy_<prefix>_<secret>` format, hashing, and their management by admins.

A key is looked up by its public prefix and checked against the SHA-256 of the whole key in the
database on every request, so a revoke takes effect on every replica at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from stackyard.auth.models import ApiKeyInfo, AuthMethod, CreatedApiKey, Principal, Role
from stackyard.auth.orm import ApiKeyRecord
from stackyard.auth.repository import ApiKeyRepository
from stackyard.cloud.clock import Clock
from stackyard.db.engine import transaction
from stackyard.errors import NotFound, PermissionDenied, StackyardError, Unauthenticated, ValidationError

KEY_PREFIX = "sy_"
_PREFIX_RE = re.compile(r"[0-9a-f]{8}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_\-]{32,128}")
_SECRET_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
_MAX_NAME = 255
_MAX_PROJECT_ID = 64
_PREFIX_ATTEMPTS = 5


@dataclass(frozen=True)
class ParsedApiKey:
    prefix: str
    secret: str


def generate_api_key() -> str:
    """A new key: `sy_` + 8 hex characters (the lookup prefix) + `_` + 43 url-safe random characters."""
    return f"{KEY_PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def is_api_key(value: str) -> bool:
    """True when `value` is shaped like an API key (so an `Authorization: Bearer` value can be routed)."""
    return value.startswith(KEY_PREFIX)


def parse_api_key(key: str) -> ParsedApiKey:
    """Split a key into prefix and secret; Unauthenticated when it is not shaped like one of ours."""
    marker, _, rest = key.partition(KEY_PREFIX)
    prefix, _, secret = rest.partition("_")
    if marker or not _PREFIX_RE.fullmatch(prefix) or not _SECRET_RE.fullmatch(secret):
        raise Unauthenticated("malformed API key")
    return ParsedApiKey(prefix, secret)


def hash_api_key(key: str) -> str:
    """SHA-256 hex of the whole key.

    A fast hash is enough: keys carry 256 random bits, so there is nothing to guess offline that a slow
    password hash (bcrypt, argon2) would protect, and a fast one keeps per-request checks cheap.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), key_hash)


def info_of(record: ApiKeyRecord) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        role=Role(record.role),
        project_id=record.project_id,
        created_by=record.created_by,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
    )


def principal_of(info: ApiKeyInfo) -> Principal:
    return Principal(
        subject=f"apikey:{info.id}",
        name=info.name,
        role=info.role,
        project_id=info.project_id,
        project_name=None,
        method=AuthMethod.API_KEY,
        expires_at=info.expires_at,
    )


def _require_admin(actor: Principal, action: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"only admins may {action}")


class ApiKeyService:
    """Create, list, revoke and authenticate API keys; one short transaction per call."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def create_api_key(
        self,
        actor: Principal,
        name: str,
        role: Role,
        project_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> CreatedApiKey:
        """A new key; its plaintext is in the result only. Member keys need a project, admin keys none."""
        _require_admin(actor, "create API keys")
        name = name.strip()
        if not name or len(name) > _MAX_NAME or not name.isprintable():
            raise ValidationError("name", f"expected 1 to {_MAX_NAME} printable characters")
        role = Role(role)
        if role is Role.MEMBER and not project_id:
            raise ValidationError("project_id", "a member key acts within one project; give its id")
        if role is Role.ADMIN and project_id:
            raise ValidationError("project_id", "an admin key reaches every project; leave it unset")
        if project_id is not None and (len(project_id) > _MAX_PROJECT_ID or not project_id.isprintable()):
            raise ValidationError("project_id", f"expected at most {_MAX_PROJECT_ID} printable characters")
        now = self._clock.now()
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise ValidationError("expires_at", "give a timezone-aware time")
            if expires_at <= now:
                raise ValidationError("expires_at", "must be in the future")
        with transaction(self._sessions) as session:
            repository = ApiKeyRepository(session)
            key = generate_api_key()
            for _ in range(_PREFIX_ATTEMPTS):
                if repository.by_prefix(parse_api_key(key).prefix) is None:
                    break
                key = generate_api_key()  # 32-bit prefixes: a collision is rare but possible
            else:
                raise StackyardError("could not find a free API key prefix; try again")
            record = repository.add(
                ApiKeyRecord(
                    id=str(uuid.uuid4()),
                    name=name,
                    prefix=parse_api_key(key).prefix,
                    key_hash=hash_api_key(key),
                    role=role.value,
                    project_id=project_id or None,
                    created_by=actor.subject,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
            return CreatedApiKey(info_of(record), key)

    def list_api_keys(self, actor: Principal) -> list[ApiKeyInfo]:
        """Every key (revoked and expired ones too), oldest first; admins only."""
        _require_admin(actor, "list API keys")
        with transaction(self._sessions) as session:
            return [info_of(record) for record in ApiKeyRepository(session).list_keys()]

    def revoke_api_key(self, actor: Principal, key_id: str) -> ApiKeyInfo:
        """Revoke a key for good; revoking a revoked key changes nothing. NotFound for an unknown id."""
        _require_admin(actor, "revoke API keys")
        with transaction(self._sessions) as session:
            repository = ApiKeyRepository(session)
            record = repository.by_id(key_id)
            if record is None:
                raise NotFound(f"API key {key_id} not found")
            if record.revoked_at is None:
                repository.mark_revoked(record, self._clock.now())
            return info_of(record)

    def authenticate_api_key(self, key: str) -> Principal:
        """The principal of a valid key; Unauthenticated when unknown, wrong, revoked or expired."""
        parsed = parse_api_key(key)
        with transaction(self._sessions) as session:
            record = ApiKeyRepository(session).by_prefix(parsed.prefix)
            if record is None or not key_matches(key, record.key_hash):
                raise Unauthenticated("invalid API key")
            info = info_of(record)
        if info.is_revoked:
            raise Unauthenticated("API key has been revoked")
        if info.is_expired(self._clock.now()):
            raise Unauthenticated("API key has expired")
        return principal_of(info)
