"""Talking to a test API server: credentials as headers, the error shape, waiting for instance states."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
import pytest

from stackyard.devcloud.access import Credentials
from support.api_server import ApiServer

REQUEST_TIMEOUT = 120.0  # per request: creates and cloud failures take a while on a loaded devcloud
BUILD_TIMEOUT = 300.0  # the devcloud is slow under load
POLL_INTERVAL = 2.0


class Credential(StrEnum):
    """How a caller sends its credential."""

    BEARER = "bearer"  # Authorization: Bearer (a stackyard token, or an API key)
    KEYSTONE = "keystone"  # X-Auth-Token
    API_KEY = "api_key"  # X-API-Key


def auth_headers(kind: Credential, value: str) -> dict[str, str]:
    if kind is Credential.BEARER:
        return {"Authorization": f"Bearer {value}"}
    if kind is Credential.KEYSTONE:
        return {"X-Auth-Token": value}
    return {"X-API-Key": value}


@dataclass
class Api:
    """A running server with an admin API key made by `stackyard apikeys create`."""

    server: ApiServer
    admin_key: str = field(repr=False)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self, headers: Mapping[str, str] | None = None) -> httpx.Client:
        """A client on the server; the caller closes it (use it as a context manager)."""
        return httpx.Client(base_url=self.base_url, headers=dict(headers or {}), timeout=REQUEST_TIMEOUT)

    def as_admin(self) -> httpx.Client:
        return self.client(auth_headers(Credential.BEARER, self.admin_key))

    def login(self, creds: Credentials) -> httpx.Response:
        with self.client() as client:
            return client.post(
                "/api/v1/auth/tokens",
                json={
                    "username": creds.username,
                    "password": creds.password,
                    "project_name": creds.project_name,
                    "user_domain_name": creds.user_domain_name,
                    "project_domain_name": creds.project_domain_name,
                },
            )

    def token_for(self, creds: Credentials) -> str:
        response = self.login(creds)
        assert response.status_code == 201, response.text
        token = response.json()["token"]
        assert isinstance(token, str)
        return token


def error_of(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    """The `error` object of an error response, after checking its status and shape.

    Every error is `{"error": {"code", "message", "details", "request_id"}}` and its request_id is the
    X-Request-ID response header.
    """
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, error
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    assert error["request_id"] == response.headers["x-request-id"], (error, response.headers)
    if code is not None:
        assert error["code"] == code, error
    return error


def field_of(response: httpx.Response) -> str:
    """The field a 422 names."""
    error = error_of(response, 422, "validation_error")
    details = error["details"]
    assert isinstance(details, dict)
    field_name = details.get("field")
    assert isinstance(field_name, str), error
    return field_name


def instance_path(provider: str, instance_id: str) -> str:
    return f"/api/v1/providers/{provider}/instances/{instance_id}"


def wait_for_status(
    client: httpx.Client, provider: str, instance_id: str, wanted: str, timeout: float = BUILD_TIMEOUT
) -> dict[str, object]:
    """Poll `GET .../status` until the instance reaches `wanted`; fail on ERROR or at the timeout."""
    deadline = time.monotonic() + timeout
    seen: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = client.get(f"{instance_path(provider, instance_id)}/status")
        assert response.status_code == 200, response.text
        seen = response.json()
        if seen["status"] == wanted and not seen.get("task_state"):
            return seen
        if seen["status"] == "ERROR":
            pytest.fail(f"instance {instance_id} went to ERROR waiting for {wanted}: {seen}")
        time.sleep(POLL_INTERVAL)
    pytest.fail(f"instance {instance_id} did not reach {wanted} within {timeout:g}s; last: {seen}")


def wait_until_gone(
    client: httpx.Client, provider: str, instance_id: str, timeout: float = BUILD_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        response = client.get(instance_path(provider, instance_id))
        if response.status_code == 404:
            return
        assert response.status_code == 200, response.text
        last = str(response.json()["status"])
        time.sleep(POLL_INTERVAL)
    pytest.fail(f"instance {instance_id} is still there after {timeout:g}s (status {last})")
