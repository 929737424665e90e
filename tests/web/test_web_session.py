"""Signing in and out, sessions across workers, and CSRF: in Chromium against a served dashboard."""

from __future__ import annotations

import httpx
import pytest

from stackyard.devcloud.access import Credentials
from support.browser import Browser, Dashboard, chrome

pytestmark = pytest.mark.devcloud


def test_signing_in_opens_the_overview_with_an_httponly_samesite_session(
    admin_browser: Browser, admin_credentials: Credentials
) -> None:
    admin_browser.open("/ui/")
    admin_browser.wait_for("main h1")
    assert admin_browser.path == "/ui/"
    assert admin_credentials.username in admin_browser.find("header .who").text
    session = next(c for c in admin_browser.driver.get_cookies() if c["name"] == "stackyard_session")
    assert session["httpOnly"] is True and session["sameSite"] == "Lax" and session["path"] == "/ui"
    # The page never carries the password or the session token.
    source = admin_browser.driver.page_source
    assert admin_credentials.password not in source and session["value"] not in source


def test_a_rejected_password_is_named_on_the_form(
    dashboard: Dashboard, admin_credentials: Credentials
) -> None:
    browser = Browser(chrome(), dashboard.base_url)
    try:
        browser.open("/ui/login")
        browser.fill("username", admin_credentials.username)
        browser.fill("password", "not-the-password")
        browser.fill("project", admin_credentials.project_name)
        browser.find("form.stack button[type=submit]").click()
        error = browser.wait_for("#password-error")
        assert error.text.startswith("password:") and "did not accept" in error.text
        assert browser.find("#password").get_attribute("aria-invalid") == "true"
        assert "not-the-password" not in browser.driver.page_source
        browser.shot("login-rejected")
        # An empty field is named too, before Keystone is asked.
        browser.fill("username", "")
        browser.find("form.stack button[type=submit]").click()
        assert browser.wait_for("#username-error").text == "username: required"
        assert "stackyard_session" not in browser.cookies()
    finally:
        browser.quit()


def test_pages_send_a_visitor_without_a_session_to_sign_in(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.base_url, timeout=60) as client:
        response = client.get("/ui/instances?status=ACTIVE")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=/ui/instances%3Fstatus%3DACTIVE"
        login = client.get("/ui/login")
        assert login.status_code == 200 and 'name="csrf_token"' in login.text
        assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
        assert login.headers["x-frame-options"] == "DENY" and login.headers["cache-control"] == "no-store"
        # A sign-in post without the form's token is refused before Keystone is asked.
        refused = client.post("/ui/login", data={"username": "admin", "password": "x", "project": "admin"})
        assert refused.status_code == 403 and "CSRF" in refused.text


def test_a_form_post_without_the_csrf_token_is_rejected(admin_browser: Browser, dashboard: Dashboard) -> None:
    admin_browser.open("/ui/")
    admin_browser.wait_for("main h1")
    # A form another site could make: same action, no token. The browser sends the session cookie
    # (same site here), and the server still refuses it.
    admin_browser.driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/ui/logout';"
        "document.body.appendChild(f); f.submit();"
    )
    admin_browser.wait_until("the refusal page", lambda: "Form expired" in admin_browser.text())
    assert "CSRF token is missing" in admin_browser.text()
    admin_browser.shot("csrf-rejected")
    # Still signed in: the forged sign-out did nothing.
    admin_browser.open("/ui/")
    admin_browser.wait_for("header nav")
    session = admin_browser.cookies()["stackyard_session"]
    with httpx.Client(
        base_url=dashboard.base_url, cookies={"stackyard_session": session}, timeout=60
    ) as client:
        for data in ({}, {"csrf_token": "0" * 64}):
            response = client.post("/ui/logout", data=data)
            assert response.status_code == 403, response.text
        page = client.get("/ui/")
        assert page.status_code == 200
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        # The right token works on either worker; a token of another session does not.
        assert client.post("/ui/logout", data={"csrf_token": token}).status_code == 303


def test_signing_out_ends_the_session(dashboard: Dashboard, demo_credentials: Credentials) -> None:
    browser = Browser(chrome(), dashboard.base_url)
    try:
        browser.sign_in(demo_credentials.username, demo_credentials.password, demo_credentials.project_name)
        browser.find("header .who button").click()
        browser.wait_until("the signed-out notice", lambda: "You are signed out." in browser.text())
        assert "stackyard_session" not in browser.cookies()
        browser.open("/ui/instances")
        browser.wait_for("#username")
        assert browser.path.startswith("/ui/login?next=/ui/instances")
    finally:
        browser.quit()
