"""The dashboard's route class: failures become HTML pages or a sign-in redirect, never JSON."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from stackyard.errors import Conflict, NotFound, PermissionDenied, Unauthenticated, ValidationError
from stackyard.web.render import (
    SECURITY_HEADERS,
    CsrfRejected,
    SignInRequired,
    UiRoute,
    WebState,
    make_templates,
    render,
)
from stackyard.web.session import CsrfKeys

FAILURES: dict[str, Exception] = {
    "signin": SignInRequired(),
    "expired": Unauthenticated("token expired"),
    "csrf": CsrfRejected(),
    "invalid": ValidationError("count", "must be 1 to 10"),
    "denied": PermissionDenied("this page needs the admin role"),
    "missing": NotFound("no student 'x' with token=abc123"),
    "conflict": Conflict("already enrolled"),
}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.state.stackyard_web = WebState(templates=make_templates(), csrf=CsrfKeys("k" * 64))
    router = APIRouter(route_class=UiRoute, include_in_schema=False)

    @router.get("/ui/fail/{kind}")
    def fail(kind: str) -> HTMLResponse:
        raise FAILURES[kind]

    @router.get("/ui/number")
    def number(n: int) -> HTMLResponse:
        raise AssertionError("not reached with a bad n")

    @router.get("/ui/page")
    def page(request: Request) -> HTMLResponse:
        return render(request, "error.html", {"title": "Hello", "message": "<b>escaped</b>"})

    app.include_router(router)
    return TestClient(app, follow_redirects=False)


def test_without_a_session_a_page_redirects_to_sign_in_and_back(client: TestClient) -> None:
    for kind in ("signin", "expired"):
        response = client.get(f"/ui/fail/{kind}?a=1")
        assert response.status_code == 303
        assert response.headers["location"] == f"/ui/login?next=/ui/fail/{kind}%3Fa%3D1"
    htmx = client.get("/ui/fail/signin", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["hx-redirect"] == "/ui/login"


@pytest.mark.parametrize(
    ("kind", "status", "text"),
    [
        ("csrf", 403, "CSRF token is missing"),
        ("invalid", 422, "count: must be 1 to 10"),
        ("denied", 403, "this page needs the admin role"),
        ("missing", 404, "Not found"),
        ("conflict", 409, "already enrolled"),
    ],
)
def test_errors_are_html_pages_with_their_status(
    client: TestClient, kind: str, status: int, text: str
) -> None:
    response = client.get(f"/ui/fail/{kind}")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text


def test_secrets_in_error_messages_are_redacted(client: TestClient) -> None:
    assert "abc123" not in client.get("/ui/fail/missing").text


def test_a_malformed_query_names_the_field(client: TestClient) -> None:
    response = client.get("/ui/number?n=many")
    assert response.status_code == 400 and "Check these fields: n." in response.text


def test_pages_escape_their_values_and_carry_the_security_headers(client: TestClient) -> None:
    response = client.get("/ui/page")
    assert "&lt;b&gt;escaped&lt;/b&gt;" in response.text and "<b>escaped</b>" not in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
