"""Dashboard dependencies: the signed-in user from the session cookie, CSRF checks, the services' state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from stackyard.api.deps import scope_of
from stackyard.api.state import AppState, app_state
from stackyard.auth.models import Principal
from stackyard.errors import PermissionDenied, Unauthenticated
from stackyard.providers.base import Scope
from stackyard.web.render import CsrfRejected, SignInRequired, web_state
from stackyard.web.session import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, session_binding


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page, and what they may see (the API's principal and scope)."""

    principal: Principal
    scope: Scope
    state: AppState

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin


def signed_in(request: Request) -> Viewer:
    """The session's principal; SignInRequired (a redirect to the sign-in page) without a valid one."""
    state = app_state(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    try:
        principal = state.auth.authenticate_bearer(token)
    except Unauthenticated as exc:  # expired or signed with another key: sign in again
        raise SignInRequired from exc
    request.state.principal = principal.subject  # the access log names the caller, as for the API
    state.limiter.check(principal.subject)
    request.state.ui_principal = principal
    request.state.ui_csrf = web_state(request).csrf.token_for(session_binding(token))
    return Viewer(principal=principal, scope=scope_of(principal), state=state)


SignedIn = Annotated[Viewer, Depends(signed_in)]


def signed_in_admin(viewer: SignedIn) -> Viewer:
    if not viewer.is_admin:
        raise PermissionDenied("this page needs the admin role")
    return viewer


AdminViewer = Annotated[Viewer, Depends(signed_in_admin)]


async def checked_csrf(request: Request, viewer: SignedIn) -> Viewer:
    """For every state-changing request: the form field (or htmx's header) must match the session."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    session = request.cookies.get(SESSION_COOKIE, "")
    if not web_state(request).csrf.is_valid(session_binding(session), token):
        raise CsrfRejected
    return viewer


Acting = Annotated[Viewer, Depends(checked_csrf)]


def acting_admin(viewer: Acting) -> Viewer:
    if not viewer.is_admin:
        raise PermissionDenied("this needs the admin role")
    return viewer


ActingAdmin = Annotated[Viewer, Depends(acting_admin)]
