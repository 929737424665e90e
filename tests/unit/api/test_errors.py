"""The API's error mapping: stackyard errors to HTTP statuses and the one JSON error shape."""

from __future__ import annotations

import json

import pytest

from stackyard.api.errors import _field_of, stackyard_error_response, status_of
from stackyard.api.requestctx import new_request_id, set_request_id
from stackyard.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ResourceFailed,
    StackyardError,
    Timeout,
    Unauthenticated,
    Unauthorized,
    Unavailable,
    ValidationError,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ValidationError("name", "empty"), 422, "validation_error"),
        (Unauthenticated("no token"), 401, "unauthenticated"),
        (PermissionDenied("members may not"), 403, "permission_denied"),
        (RateLimited(3.0), 429, "rate_limited"),
        (NotFound("gone", service="compute"), 404, "not_found"),
        (QuotaExceeded("cores", service="compute"), 409, "quota_exceeded"),
        (Conflict("busy", service="compute"), 409, "conflict"),
        (BadRequest("bad", service="compute"), 400, "cloud_bad_request"),
        (Forbidden("policy", service="compute"), 403, "cloud_forbidden"),
        (Unauthorized("provider creds", service="identity"), 502, "cloud_unauthorized"),
        (Unavailable("down", service="compute"), 503, "cloud_unavailable"),
        (Timeout("slow", service="compute"), 504, "cloud_timeout"),
        (ResourceFailed("ERROR", service="compute", fault="no host"), 502, "cloud_resource_failed"),
        (ConfigError("no price book"), 503, "misconfigured"),
        (StackyardError("other"), 500, "internal_error"),
    ],
)
def test_each_error_has_its_status_and_code(error: StackyardError, status: int, code: str) -> None:
    assert status_of(error) == (status, code)


def test_cloud_errors_carry_the_cloud_request_id_and_the_request_id() -> None:
    set_request_id("req-abc")
    try:
        response = stackyard_error_response(
            Unavailable("compute answered 503", service="compute", status_code=503, request_id="req-nova-1")
        )
    finally:
        set_request_id(None)
    body = json.loads(bytes(response.body))
    assert response.status_code == 503
    assert body == {
        "error": {
            "code": "cloud_unavailable",
            "message": "compute answered 503",
            "details": {"service": "compute", "cloud_request_id": "req-nova-1", "cloud_status": 503},
            "request_id": "req-abc",
        }
    }


def test_validation_errors_name_the_field_and_rate_limits_say_when_to_retry() -> None:
    body = json.loads(bytes(stackyard_error_response(ValidationError("type", "unknown flavor")).body))
    assert body["error"]["details"] == {"field": "type"}
    assert body["error"]["message"] == "unknown flavor"
    limited = stackyard_error_response(RateLimited(2.4))
    assert limited.headers["Retry-After"] == "2"
    unauthenticated = stackyard_error_response(Unauthenticated("no credentials"))
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")


def test_secrets_in_messages_are_redacted() -> None:
    body = json.loads(bytes(stackyard_error_response(ConfigError("bad config: password: hunter22")).body))
    assert "hunter22" not in json.dumps(body)


@pytest.mark.parametrize(
    ("location", "field"),
    [
        (("body", "name"), "name"),
        (("body", "network_ids", 0), "network_ids[0]"),
        (("query", "limit"), "limit"),
        (("body", "instances", 2, "type"), "instances[2].type"),
        (("body",), "body"),
    ],
)
def test_validation_locations_become_field_names(location: tuple[int | str, ...], field: str) -> None:
    assert _field_of(location) == field


def test_request_ids_are_kept_when_well_formed_and_made_otherwise() -> None:
    assert new_request_id("lb-123_abc") == "lb-123_abc"
    assert new_request_id("bad id with spaces").startswith("req-")
    assert new_request_id(None).startswith("req-")
    assert new_request_id("x" * 65).startswith("req-")
