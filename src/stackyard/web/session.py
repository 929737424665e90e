"""Dashboard sessions: the cookie that carries a bearer token, and CSRF tokens bound to it (pure).

The session cookie holds the same signed bearer token `POST /api/v1/auth/tokens` hands out, so any
replica with the API's secret key accepts it and nothing is stored server-side. Forms carry a CSRF
token: an HMAC, under a key derived from the API's secret, of the session (or, before sign-in, of a
random nonce kept in a cookie of its own). A cross-site form cannot read the token, so its post fails.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_COOKIE = "stackyard_session"
NONCE_COOKIE = "stackyard_nonce"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/ui"
NONCE_MAX_AGE = 3600  # seconds a sign-in form stays usable


class CsrfKeys:
    """Makes and checks CSRF tokens; `secret` is the API's token-signing secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the CSRF key needs a non-empty secret")
        # A key of its own: a CSRF token is never also a valid signature of anything else.
        self._key = hmac.new(secret.encode(), b"stackyard web csrf v1", hashlib.sha256).digest()

    def token_for(self, binding: str) -> str:
        """The token for a session cookie value or a sign-in nonce."""
        return hmac.new(self._key, binding.encode(), hashlib.sha256).hexdigest()

    def is_valid(self, binding: str | None, token: str | None) -> bool:
        if not binding or not token:
            return False
        return hmac.compare_digest(self.token_for(binding), token)


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def login_binding(nonce: str) -> str:
    return f"login:{nonce}"


def session_binding(session_token: str) -> str:
    # A digest of the bearer token: the token itself is never the HMAC's message in full.
    return "session:" + hashlib.sha256(session_token.encode()).hexdigest()


def safe_next(target: str | None, default: str = "/ui/") -> str:
    """Where to go after signing in: only a path under /ui on this site (no open redirect)."""
    if not target or not target.startswith("/ui") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 0x20 for ch in target):
        return default
    return target
