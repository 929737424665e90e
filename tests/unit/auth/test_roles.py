"""Role mapping from Keystone, principals and login requests that keep their secrets out of reprs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from stackyard.auth.models import (
    AppCredentialLogin,
    AuthMethod,
    PasswordLogin,
    Principal,
    Role,
    role_from_keystone,
)
from stackyard.auth.service import principal_from_keystone
from stackyard.cloud.identity import KeystoneToken
from stackyard.errors import PermissionDenied


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["admin", "member", "reader"], Role.ADMIN),
        (["admin"], Role.ADMIN),
        (["member", "reader"], Role.MEMBER),
        (["Member"], Role.MEMBER),
        (["reader", "member", "heat_stack_owner"], Role.MEMBER),
    ],
)
def test_the_strongest_known_role_wins(roles: list[str], expected: Role) -> None:
    assert role_from_keystone(roles) is expected


@pytest.mark.parametrize("roles", [[], ["reader"], ["service", "load-balancer_observer"]])
def test_without_admin_or_member_access_is_denied_naming_what_is_needed(roles: list[str]) -> None:
    with pytest.raises(PermissionDenied) as caught:
        role_from_keystone(roles)
    assert "admin or member" in str(caught.value)


def test_a_member_needs_a_project_scoped_token(make_token: Callable[..., KeystoneToken]) -> None:
    with pytest.raises(PermissionDenied, match="project-scoped"):
        principal_from_keystone(make_token(project_id=None), AuthMethod.KEYSTONE_TOKEN)
    admin = principal_from_keystone(make_token(roles=("admin",), project_id=None), AuthMethod.KEYSTONE_TOKEN)
    assert admin.role is Role.ADMIN and admin.project_id is None


def test_principal_from_keystone_carries_the_token_but_never_shows_it(
    make_token: Callable[..., KeystoneToken],
) -> None:
    validated = make_token(token="gAAAAAB-very-secret-keystone-token")
    principal = principal_from_keystone(validated, AuthMethod.BEARER)
    assert principal.subject == "u-demo" and principal.name == "demo"
    assert principal.project_id == "p-demo" and principal.project_name == "demo"
    assert principal.expires_at == validated.expires_at
    assert principal.keystone_token == "gAAAAAB-very-secret-keystone-token"
    assert "very-secret" not in repr(principal)
    assert "very-secret" not in repr(validated)


def test_project_access() -> None:
    member = Principal("u", "u", Role.MEMBER, "p1", "one", AuthMethod.BEARER, None)
    admin = Principal("a", "a", Role.ADMIN, None, None, AuthMethod.API_KEY, None)
    assert member.can_access_project("p1") and not member.can_access_project("p2")
    assert admin.can_access_project("p2") and admin.is_admin and not member.is_admin


def test_login_requests_hide_their_secrets() -> None:
    assert "hunter2" not in repr(PasswordLogin("alice", "hunter2", project_name="demo"))
    assert "s3cr3t-app-cred" not in repr(AppCredentialLogin("s3cr3t-app-cred", credential_id="abc"))


def test_admin_counts_only_on_the_admin_project(make_token: Callable[..., KeystoneToken]) -> None:
    elsewhere = replace(make_token(roles=("admin", "member", "reader")), is_admin_project=False)
    assert principal_from_keystone(elsewhere, AuthMethod.BEARER).role is Role.MEMBER
    admin_only = replace(make_token(roles=("admin",)), is_admin_project=False)
    with pytest.raises(PermissionDenied):
        principal_from_keystone(admin_only, AuthMethod.BEARER)
