"""Bearer JWTs: issue/verify round trip, expiry against the injected clock, tampering, the encrypted kst."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from stackyard.auth.models import AuthMethod, Principal, Role
from stackyard.auth.service import principal_from_keystone
from stackyard.auth.tokens import TokenSigner, load_or_create_secret
from stackyard.cloud.clock import FakeClock
from stackyard.cloud.identity import KeystoneToken
from stackyard.errors import ConfigError, Unauthenticated

SECRET = "unit-test-secret-" + "x" * 40
KEYSTONE = "gAAAAABkeystone-token-that-must-never-be-readable-0123456789"


def claims_of(token: str) -> dict[str, object]:
    """The payload as anyone holding the token can read it (no key needed)."""
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


@pytest.fixture
def principal(make_token: Callable[..., KeystoneToken]) -> Principal:
    return principal_from_keystone(make_token(token=KEYSTONE, lifetime=7200), AuthMethod.BEARER)


def test_round_trip_carries_the_principal_and_the_keystone_token(
    clock: FakeClock, principal: Principal
) -> None:
    signer = TokenSigner(SECRET, clock)
    issued = signer.issue(principal, ttl=600)
    assert issued.expires_at == clock.now() + timedelta(seconds=600)
    verified = signer.verify(issued.token)
    assert verified.subject == "u-demo" and verified.name == "demo"
    assert verified.role is Role.MEMBER and verified.method is AuthMethod.BEARER
    assert verified.project_id == "p-demo" and verified.project_name == "demo"
    assert verified.expires_at == issued.expires_at
    assert verified.keystone_token == KEYSTONE


def test_another_replica_with_the_same_secret_accepts_the_token(
    clock: FakeClock, principal: Principal
) -> None:
    issued = TokenSigner(SECRET, clock).issue(principal, ttl=600)
    assert TokenSigner(SECRET, clock).verify(issued.token).subject == principal.subject


def test_the_keystone_token_is_encrypted_in_the_jwt(clock: FakeClock, principal: Principal) -> None:
    issued = TokenSigner(SECRET, clock).issue(principal, ttl=600)
    assert KEYSTONE not in issued.token
    claims = claims_of(issued.token)
    assert set(claims) >= {
        "sub",
        "name",
        "role",
        "project_id",
        "project_name",
        "iat",
        "exp",
        "jti",
        "iss",
        "kst",
    }
    assert claims["iss"] == "stackyard"
    assert isinstance(claims["kst"], str) and KEYSTONE not in claims["kst"]
    assert KEYSTONE not in repr(issued)


def test_each_token_has_its_own_id(clock: FakeClock, principal: Principal) -> None:
    signer = TokenSigner(SECRET, clock)
    assert (
        claims_of(signer.issue(principal, 600).token)["jti"]
        != claims_of(signer.issue(principal, 600).token)["jti"]
    )


def test_lifetime_never_passes_the_keystone_tokens_expiry(
    clock: FakeClock, make_token: Callable[..., KeystoneToken]
) -> None:
    principal = principal_from_keystone(make_token(lifetime=300), AuthMethod.BEARER)
    issued = TokenSigner(SECRET, clock).issue(principal, ttl=3600)
    assert issued.expires_at == clock.now() + timedelta(seconds=300)


def test_expired_tokens_are_rejected_by_the_injected_clock(clock: FakeClock, principal: Principal) -> None:
    signer = TokenSigner(SECRET, clock)
    issued = signer.issue(principal, ttl=600)
    clock.advance(599)
    signer.verify(issued.token)
    clock.advance(1)
    with pytest.raises(Unauthenticated, match="expired"):
        signer.verify(issued.token)


def test_credentials_about_to_expire_get_no_token(
    clock: FakeClock, make_token: Callable[..., KeystoneToken]
) -> None:
    principal = principal_from_keystone(make_token(lifetime=0.5), AuthMethod.BEARER)
    with pytest.raises(Unauthenticated):
        TokenSigner(SECRET, clock).issue(principal, ttl=600)


def test_a_token_signed_with_another_secret_is_rejected(clock: FakeClock, principal: Principal) -> None:
    issued = TokenSigner("another-secret-" + "y" * 40, clock).issue(principal, ttl=600)
    with pytest.raises(Unauthenticated, match="signature"):
        TokenSigner(SECRET, clock).verify(issued.token)


def test_a_tampered_payload_is_rejected(clock: FakeClock, principal: Principal) -> None:
    signer = TokenSigner(SECRET, clock)
    header, payload, signature = signer.issue(principal, ttl=600).token.split(".")
    claims = claims_of(f"{header}.{payload}.{signature}")
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="signature"):
        signer.verify(f"{header}.{forged}.{signature}")


def test_unsigned_tokens_are_rejected(clock: FakeClock, principal: Principal) -> None:
    claims = claims_of(TokenSigner(SECRET, clock).issue(principal, ttl=600).token)
    unsigned = jwt.encode({**claims, "role": "admin"}, key=None, algorithm="none")
    with pytest.raises(Unauthenticated):
        TokenSigner(SECRET, clock).verify(unsigned)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "Bearer x.y.z"])
def test_garbled_tokens_are_rejected(clock: FakeClock, garbage: str) -> None:
    with pytest.raises(Unauthenticated, match=r"malformed|signature"):
        TokenSigner(SECRET, clock).verify(garbage)


def test_a_correctly_signed_token_with_a_garbled_kst_is_rejected(clock: FakeClock) -> None:
    signer = TokenSigner(SECRET, clock)
    member = Principal("u", "u", Role.MEMBER, "p", None, AuthMethod.BEARER, None)
    claims = claims_of(signer.issue(member, ttl=600).token)
    # Sign it with the real derived key, as if the key had leaked but not the Fernet key.
    signing_key = signer._signing_key
    forged = jwt.encode({**claims, "kst": "not-a-fernet-token"}, signing_key, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="malformed"):
        signer.verify(forged)
    forged = jwt.encode({**claims, "role": "superuser"}, signing_key, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="malformed"):
        signer.verify(forged)


def test_api_key_principals_get_tokens_without_kst(clock: FakeClock) -> None:
    admin = Principal("apikey:1", "ci", Role.ADMIN, None, None, AuthMethod.API_KEY, None)
    signer = TokenSigner(SECRET, clock)
    issued = signer.issue(admin, ttl=60)
    assert "kst" not in claims_of(issued.token)
    verified = signer.verify(issued.token)
    assert verified.keystone_token is None and verified.project_id is None and verified.role is Role.ADMIN


def test_short_secrets_are_refused(clock: FakeClock) -> None:
    with pytest.raises(ConfigError):
        TokenSigner("too-short", clock)
    assert SECRET not in repr(TokenSigner(SECRET, clock))


def test_the_secret_file_is_created_once_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret_key"
    first = load_or_create_secret(path)
    assert len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_workers_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(load_or_create_secret(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert path.read_text().strip() == results[0]


def test_an_existing_secret_file_is_used_as_is_and_a_short_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("k" * 40 + "\n")
    os.chmod(path, 0o600)
    assert load_or_create_secret(path) == "k" * 40
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="shorter"):
        load_or_create_secret(path)
    assert path.read_text() == "short\n"
