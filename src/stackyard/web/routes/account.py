"""Signing in with Keystone credentials (a session cookie) and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from stackyard.api.state import app_state
from stackyard.auth.models import PasswordLogin
from stackyard.errors import PermissionDenied, Unauthenticated
from stackyard.web.deps import Acting
from stackyard.web.render import CsrfRejected, UiRoute, render, web_state
from stackyard.web.session import (
    COOKIE_PATH,
    NONCE_COOKIE,
    NONCE_MAX_AGE,
    SESSION_COOKIE,
    login_binding,
    new_nonce,
    safe_next,
)

router = APIRouter(route_class=UiRoute, include_in_schema=False)
_FIELD_LIMIT = 255
_REJECTED = "Keystone did not accept this username, password and project"


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(
    request: Request,
    *,
    next_url: str,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> HTMLResponse:
    nonce = request.cookies.get(NONCE_COOKIE) or new_nonce()
    request.state.ui_csrf = web_state(request).csrf.token_for(login_binding(nonce))
    response = render(
        request,
        "login.html",
        {
            "next_url": next_url,
            "errors": errors or {},
            "values": values or {"username": "", "project": "", "domain": "Default"},
            "notice": notice,
        },
        status_code=status_code,
    )
    response.set_cookie(
        NONCE_COOKIE,
        nonce,
        max_age=NONCE_MAX_AGE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
    )
    return response


@router.get("/ui/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, signed_out: bool = False) -> HTMLResponse:
    notice = "You are signed out." if signed_out else None
    return _login_page(request, next_url=safe_next(next), notice=notice)


@router.post("/ui/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    project: Annotated[str, Form()] = "",
    domain: Annotated[str, Form()] = "Default",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    state = app_state(request)
    nonce = request.cookies.get(NONCE_COOKIE)
    if not web_state(request).csrf.is_valid(login_binding(nonce) if nonce else None, csrf_token):
        raise CsrfRejected
    state.limiter.check(f"ip:{request.client.host if request.client else 'unknown'}")
    values = {"username": username, "project": project, "domain": domain or "Default"}
    errors: dict[str, str] = {}
    for name, value in (("username", username), ("password", password), ("project", project)):
        if not value.strip():
            errors[name] = "required"
        elif len(value) > (4096 if name == "password" else _FIELD_LIMIT):
            errors[name] = "too long"
    if errors:
        return _login_page(request, next_url=safe_next(next), errors=errors, values=values, status_code=422)
    try:
        issued = state.auth.login(
            PasswordLogin(
                username=username.strip(),
                password=password,
                project_name=project.strip(),
                user_domain_name=values["domain"],
                project_domain_name=values["domain"],
            )
        )
    except Unauthenticated:
        errors["password"] = _REJECTED
        return _login_page(request, next_url=safe_next(next), errors=errors, values=values, status_code=401)
    except PermissionDenied as exc:
        errors["project"] = str(exc)
        return _login_page(request, next_url=safe_next(next), errors=errors, values=values, status_code=403)
    response = RedirectResponse(safe_next(next), status_code=303)
    max_age = max(1, int((issued.expires_at - state.clock.now()).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_is_https(request),
    )
    response.delete_cookie(NONCE_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/ui/logout")
def logout(_viewer: Acting) -> Response:
    response = RedirectResponse("/ui/login?signed_out=true", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")
    return response
