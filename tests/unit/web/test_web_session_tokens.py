"""CSRF tokens and the post-sign-in redirect of the dashboard (pure)."""

from __future__ import annotations

import pytest

from stackyard.web.session import CsrfKeys, login_binding, new_nonce, safe_next, session_binding


def test_a_token_is_valid_only_for_its_own_binding_and_key() -> None:
    keys = CsrfKeys("s" * 64)
    session = session_binding("header.claims.signature")
    token = keys.token_for(session)
    assert keys.is_valid(session, token)
    assert not keys.is_valid(session_binding("another.session.token"), token)
    assert not keys.is_valid(session, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not CsrfKeys("t" * 64).is_valid(session, token)
    assert (
        not keys.is_valid(session, None) and not keys.is_valid(None, token) and not keys.is_valid(session, "")
    )


def test_sign_in_and_session_bindings_never_share_tokens() -> None:
    keys = CsrfKeys("s" * 64)
    nonce = new_nonce()
    assert len(nonce) >= 40 and nonce != new_nonce()
    assert keys.token_for(login_binding(nonce)) != keys.token_for(session_binding(nonce))
    # The binding is a digest: the session token itself is not what is signed.
    assert "header.claims" not in session_binding("header.claims.signature")


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        CsrfKeys("")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/instances?status=ACTIVE", "/ui/instances?status=ACTIVE"),
        ("/ui/", "/ui/"),
        (None, "/ui/"),
        ("", "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui", "/ui/"),
        ("/api/v1/students", "/ui/"),
        ("/ui\\..\\x", "/ui/"),
        ("/ui/\r\nSet-Cookie: x=1", "/ui/"),
    ],
)
def test_only_dashboard_paths_are_followed_after_sign_in(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
