"""Stateless bearer tokens: HS256 JWTs carrying the principal and its Keystone token (encrypted).

Any replica holding the same secret key accepts a token another replica issued; nothing is stored.
The Keystone token travels inside the JWT as `kst`, Fernet-encrypted (AES-128-CBC + HMAC-SHA256) with
a key derived from the secret, because a JWT's claims are only base64, readable by whoever holds it.
The signing and encryption keys are derived separately (HKDF-SHA256) so neither can stand in for the other.

A bearer token stays valid until its `exp` (at most the configured lifetime, never past the Keystone
token's expiry); like any stateless token it cannot be revoked before that.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from stackyard.auth.models import AuthMethod, Principal, Role
from stackyard.cloud.clock import Clock
from stackyard.errors import ConfigError, Unauthenticated, ValidationError

_LOG = logging.getLogger(__name__)

ISSUER = "stackyard"
_ALGORITHM = "HS256"
_MIN_SECRET = 32
_SECRET_BYTES = 48  # token_urlsafe(48) is 64 characters
_REQUIRED_CLAIMS = ("sub", "name", "role", "iat", "exp", "jti", "iss")


@dataclass(frozen=True)
class IssuedToken:
    token: str = field(repr=False)
    expires_at: datetime


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"stackyard-auth-v1", info=purpose).derive(
        secret_key.encode()
    )


class TokenSigner:
    """Issues and verifies bearer tokens with keys derived from `secret_key` (at least 32 characters)."""

    def __init__(self, secret_key: str, clock: Clock) -> None:
        if len(secret_key) < _MIN_SECRET:
            raise ConfigError(f"the API secret key must be at least {_MIN_SECRET} characters")
        self._signing_key = _derive(secret_key, b"jwt-hs256")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"keystone-token-fernet")))
        self._clock = clock

    def __repr__(self) -> str:
        return "TokenSigner(<secret>)"

    def issue(self, principal: Principal, ttl: float) -> IssuedToken:
        """A token for `principal`, valid `ttl` seconds but never past `principal.expires_at`."""
        if ttl <= 0:
            raise ValidationError("ttl", f"must be positive seconds, got {ttl}")
        now = self._clock.now()
        expires = now + timedelta(seconds=ttl)
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        # JWT times are whole seconds; rounding down keeps exp within the Keystone token's life.
        exp = int(expires.timestamp())
        if exp <= int(now.timestamp()):
            raise Unauthenticated("the credentials expire too soon to issue a token")
        claims: dict[str, object] = {
            "iss": ISSUER,
            "sub": principal.subject,
            "name": principal.name,
            "role": principal.role.value,
            "project_id": principal.project_id,
            "project_name": principal.project_name,
            "iat": int(now.timestamp()),
            "exp": exp,
            "jti": uuid.uuid4().hex,
        }
        if principal.keystone_token is not None:
            claims["kst"] = self._fernet.encrypt(principal.keystone_token.encode()).decode("ascii")
        token = jwt.encode(claims, self._signing_key, algorithm=_ALGORITHM)
        return IssuedToken(token, datetime.fromtimestamp(exp, UTC))

    def verify(self, token: str) -> Principal:
        """The principal a token stands for; Unauthenticated (with a short reason) when it is not good."""
        try:
            # Expiry is checked below against the injected clock, not pyjwt's time.time().
            claims = jwt.decode(
                token,
                self._signing_key,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"require": list(_REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise Unauthenticated("bearer token has a bad signature") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("bearer token is malformed") from None
        now = self._clock.now()
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise Unauthenticated("bearer token is malformed")
        if now.timestamp() >= exp:
            raise Unauthenticated("bearer token has expired")
        try:
            role = Role(claims["role"])
        except ValueError:
            raise Unauthenticated("bearer token is malformed") from None
        subject, name = claims["sub"], claims["name"]
        project_id, project_name = claims.get("project_id"), claims.get("project_name")
        if not isinstance(subject, str) or not isinstance(name, str):
            raise Unauthenticated("bearer token is malformed")
        if not isinstance(project_id, str | None) or not isinstance(project_name, str | None):
            raise Unauthenticated("bearer token is malformed")
        if role is Role.MEMBER and project_id is None:
            raise Unauthenticated("bearer token is malformed")
        return Principal(
            subject=subject,
            name=name,
            role=role,
            project_id=project_id,
            project_name=project_name,
            method=AuthMethod.BEARER,
            expires_at=datetime.fromtimestamp(exp, UTC),
            keystone_token=self._keystone_token(claims.get("kst")),
        )

    def _keystone_token(self, kst: object) -> str | None:
        if kst is None:
            return None
        if not isinstance(kst, str):
            raise Unauthenticated("bearer token is malformed")
        try:
            return self._fernet.decrypt(kst.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise Unauthenticated("bearer token is malformed") from None


def load_or_create_secret(path: Path) -> str:
    """The secret kept in `path`, generated (64 characters, mode 0600) when the file does not exist.

    Creation is atomic and never overwrites: the secret is written to a private temporary file which is
    then hard-linked to `path`; when several workers start at once, the first link wins and the others
    read that file.
    """
    path = path.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # O_EXCL, mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(_SECRET_BYTES) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
                _LOG.info("generated the API secret key into %s", path)
        finally:
            Path(temporary).unlink(missing_ok=True)
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the API secret key file {path}: {exc.strerror}") from None
    if path.stat().st_mode & 0o077:
        _LOG.warning("the API secret key file %s is readable by other users; chmod 600 it", path)
    if len(secret) < _MIN_SECRET:
        raise ConfigError(f"the API secret key in {path} is shorter than {_MIN_SECRET} characters")
    return secret
