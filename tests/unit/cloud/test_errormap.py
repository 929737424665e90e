"""Error mapping: real keystoneauth1/openstacksdk exceptions into the CloudError tree, and redaction."""

from __future__ import annotations

import errno
import json
from http import HTTPStatus

import pytest
import requests
import urllib3.exceptions as u3
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from stackyard.cloud.errormap import (
    TransportFailure,
    http_status_of,
    redact,
    request_id_of,
    translate_error,
    transport_failure_of,
)
from stackyard.errors import (
    BadRequest,
    CloudError,
    Conflict,
    Forbidden,
    NotFound,
    QuotaExceeded,
    ResourceFailed,
    Timeout,
    Unauthorized,
    Unavailable,
)

URL = "http://cloud.test:8774/v2.1/servers"


def response(
    status: int,
    body: object = None,
    *,
    text: str | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.reason = HTTPStatus(status).phrase
    resp.url = URL
    resp.request = requests.Request("POST", URL).prepare()
    resp.headers.update(headers or {})
    if body is not None:
        resp.headers["Content-Type"] = content_type or "application/json"
        resp._content = json.dumps(body).encode()
    elif text is not None:
        resp.headers["Content-Type"] = content_type or "text/html; charset=UTF-8"
        resp._content = text.encode()
    else:
        resp._content = b""
    resp.encoding = "utf-8"
    return resp


def ksa(status: int, body: object = None, **kwargs: object) -> ksa_exc.HttpError:
    error = ksa_exc.from_response(response(status, body, **kwargs), "POST", URL)  # type: ignore[arg-type]
    assert isinstance(error, ksa_exc.HttpError)
    return error


def sdk(status: int, body: object = None, **kwargs: object) -> sdk_exc.HttpException:
    with pytest.raises(sdk_exc.HttpException) as info:
        sdk_exc.raise_from_response(response(status, body, **kwargs))  # type: ignore[arg-type]
    return info.value


BOTH = pytest.mark.parametrize("make", [ksa, sdk], ids=["keystoneauth", "openstacksdk"])


# --------------------------------------------------------------------------------------------------
# HTTP statuses
# --------------------------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (405, BadRequest),
        (408, Timeout),
        (409, Conflict),
        (410, NotFound),
        (412, Conflict),
        (413, BadRequest),  # too large, not a quota
        (415, BadRequest),
        (422, BadRequest),
        (429, Unavailable),
        (500, Unavailable),
        (502, Unavailable),
        (503, Unavailable),
        (504, Unavailable),
    ],
)
def test_status_maps_to_one_class(make: type, status: int, expected: type[CloudError]) -> None:
    error = translate_error(make(status), "compute")
    assert type(error) is expected
    assert error.status_code == status and error.service == "compute"


@BOTH
@pytest.mark.parametrize(
    ("status", "body"),
    [
        # Nova
        (
            403,
            {
                "forbidden": {
                    "message": "Quota exceeded for instances: Requested 1, but already used 10 of 10 "
                    "instances",
                    "code": 403,
                }
            },
        ),
        (403, {"forbidden": {"message": "Maximum number of ports exceeded", "code": 403}}),
        # Neutron
        (
            409,
            {
                "NeutronError": {
                    "type": "OverQuota",
                    "message": "Quota exceeded for resources: ['port'].",
                    "detail": "",
                }
            },
        ),
        # Cinder
        (
            413,
            {
                "overLimit": {
                    "code": 413,
                    "message": "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded "
                    "for quota 'volumes'.",
                    "retryAfter": "0",
                }
            },
        ),
        (
            413,
            {
                "overLimit": {
                    "code": 413,
                    "message": "Requested volume or snapshot exceeds allowed gigabytes quota.",
                }
            },
        ),
    ],
)
def test_quota_answers_map_to_quota_exceeded(make: type, status: int, body: dict[str, object]) -> None:
    error = translate_error(make(status, body), "compute")
    assert type(error) is QuotaExceeded
    inner = next(iter(body.values()))
    assert isinstance(inner, dict)
    assert str(inner["message"]) in error.message


def test_glance_html_quota_answer_maps_to_quota_exceeded() -> None:
    html = (
        "<html>\n <head>\n  <title>413 Request Entity Too Large</title>\n </head>\n <body>\n"
        "  <h1>413 Request Entity Too Large</h1>\n"
        "  Denying attempt to upload image because it exceeds the quota: 1000 bytes<br /><br />\n"
        " </body>\n</html>"
    )
    error = translate_error(ksa(413, text=html), "image")
    assert type(error) is QuotaExceeded
    assert "Denying attempt to upload image because it exceeds the quota" in error.message
    assert "<" not in error.message


def test_plain_conflict_is_not_mistaken_for_quota() -> None:
    body = {"NeutronError": {"type": "IpAddressInUse", "message": "IP address 10.0.0.5 already allocated"}}
    assert type(translate_error(sdk(409, body), "network")) is Conflict


def test_openstacksdk_not_found_without_response() -> None:
    error = translate_error(sdk_exc.NotFoundException("No Server found for web-9"), "compute")
    assert type(error) is NotFound
    assert error.message == "compute: No Server found for web-9"
    assert error.status_code == 404


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (sdk_exc.BadRequestException, 400),
        (sdk_exc.ForbiddenException, 403),
        (sdk_exc.ConflictException, 409),
        (sdk_exc.PreconditionFailedException, 412),
    ],
)
def test_openstacksdk_classes_imply_status(cls: type[sdk_exc.HttpException], status: int) -> None:
    assert http_status_of(cls("x")) == status


# --------------------------------------------------------------------------------------------------
# Request id and the service's message
# --------------------------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("header", ["x-openstack-request-id", "X-Compute-Request-Id"])
def test_request_id_is_kept(make: type, header: str) -> None:
    error = translate_error(make(404, headers={header: "req-abc-123"}), "compute")
    assert error.request_id == "req-abc-123"
    assert "(request id req-abc-123)" in str(error)


def test_request_id_from_keystoneauth_attribute_without_response() -> None:
    assert request_id_of(ksa_exc.NotFound(request_id="req-9")) == "req-9"


@BOTH
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"itemNotFound": {"message": "Flavor m1.huge could not be found.", "code": 404}},
            "Flavor m1.huge could not be found.",
        ),
        (
            {
                "NeutronError": {
                    "type": "NetworkNotFound",
                    "message": "Network abc could not be found.",
                    "detail": "",
                }
            },
            "Network abc could not be found.",
        ),
        (
            {"error": {"code": 404, "title": "Not Found", "message": "Could not find project: p1."}},
            "Could not find project: p1.",
        ),
        (
            {
                "errors": [
                    {
                        "status": 404,
                        "title": "Not Found",
                        "detail": "No resource provider with uuid rp1 found",
                        "code": "placement.undefined_code",
                    }
                ]
            },
            "No resource provider with uuid rp1 found",
        ),
        (
            {"error_message": json.dumps({"faultstring": "Node n1 could not be found.", "debuginfo": None})},
            "Node n1 could not be found.",
        ),
        (
            {"faultcode": "Client", "faultstring": "Load balancer lb1 not found.", "debuginfo": None},
            "Load balancer lb1 not found.",
        ),
        ({"message": "Image img1 not found"}, "Image img1 not found"),
    ],
)
def test_service_message_is_extracted_from_each_json_shape(make: type, body: object, expected: str) -> None:
    assert translate_error(make(404, body), "svc").message == f"svc: {expected}"


@BOTH
def test_text_and_empty_bodies(make: type) -> None:
    html = "<html><body><h1>404 Not Found</h1>\nNo image found with ID img-7<br /><br />\n</body></html>"
    assert (
        translate_error(make(404, text=html), "image").message
        == "image: 404 Not Found: No image found with ID img-7"
    )
    plain = translate_error(make(409, text="Object is locked\n", content_type="text/plain"), "object-store")
    assert plain.message == "object-store: Object is locked"
    assert translate_error(make(503), "compute").message == "compute: HTTP 503 Service Unavailable"


@BOTH
def test_body_that_lies_about_being_json(make: type) -> None:
    error = translate_error(
        make(500, text="Internal error, see logs", content_type="application/json"), "compute"
    )
    assert error.message == "compute: Internal error, see logs"


def test_long_messages_are_truncated() -> None:
    error = translate_error(ksa(400, {"badRequest": {"message": "x" * 5000}}), "compute")
    assert len(error.message) <= 1000 + len("compute: ")


# --------------------------------------------------------------------------------------------------
# Transport failures
# --------------------------------------------------------------------------------------------------


def through_keystoneauth(failure: BaseException) -> BaseException:
    """The exception keystoneauth raises when requests raises `failure` (same wrapping as Session)."""

    class Failing(requests.adapters.BaseAdapter):
        def send(self, *args: object, **kwargs: object) -> requests.Response:  # type: ignore[override]
            raise failure

        def close(self) -> None:
            pass

    from keystoneauth1 import session as ksa_session

    http = requests.Session()
    http.mount("http://", Failing())
    with pytest.raises(ksa_exc.ClientException) as info:
        ksa_session.Session(session=http).get(URL)
    return info.value


def refused_requests_error() -> requests.exceptions.ConnectionError:
    sock = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    new_conn = u3.NewConnectionError(None, f"Failed to establish a new connection: {sock}")  # type: ignore[arg-type]
    new_conn.__cause__ = sock
    retry = u3.MaxRetryError(None, URL, new_conn)  # type: ignore[arg-type]
    error = requests.exceptions.ConnectionError(retry)
    error.__context__ = retry
    return error


@pytest.mark.parametrize(
    ("failure", "kind", "expected"),
    [
        (refused_requests_error(), TransportFailure.UNREACHABLE, Unavailable),
        (
            requests.exceptions.ConnectTimeout(
                u3.MaxRetryError(None, URL, u3.ConnectTimeoutError(None, "timed out. (connect timeout=5)"))  # type: ignore[arg-type]
            ),
            TransportFailure.CONNECT_TIMEOUT,
            Timeout,
        ),
        (
            requests.exceptions.ReadTimeout(
                u3.ReadTimeoutError(None, URL, "Read timed out. (read timeout=30)")
            ),  # type: ignore[arg-type]
            TransportFailure.READ_TIMEOUT,
            Timeout,
        ),
        (
            requests.exceptions.ConnectionError(
                u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
            ),
            TransportFailure.DROPPED,
            Unavailable,
        ),
        (
            requests.exceptions.SSLError(u3.SSLError("certificate verify failed")),
            TransportFailure.TLS,
            Unavailable,
        ),
    ],
)
def test_transport_failures_via_keystoneauth(
    failure: BaseException, kind: TransportFailure, expected: type[CloudError]
) -> None:
    exc = through_keystoneauth(failure)
    assert isinstance(exc, ksa_exc.ConnectionError)
    assert transport_failure_of(exc) is kind
    error = translate_error(exc, "compute")
    assert type(error) is expected and error.status_code is None
    assert error.message.startswith("compute: ")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        # keystoneauth messages embed str() of the requests error; only the text survives re-raising
        (
            ksa_exc.ConnectFailure(
                f"Unable to establish connection to {URL}: [Errno 111] Connection refused"
            ),
            TransportFailure.UNREACHABLE,
        ),
        (
            ksa_exc.ConnectFailure(
                "Unable to establish connection: Failed to resolve 'cloud.test' "
                "([Errno -2] Name or service not known)"
            ),
            TransportFailure.UNREACHABLE,
        ),
        (
            ksa_exc.ConnectFailure(
                "Unable to establish connection: ('Connection aborted.', RemoteDisconnected(...))"
            ),
            TransportFailure.DROPPED,
        ),
        (ksa_exc.ConnectFailure("Unable to establish connection: something new"), TransportFailure.DROPPED),
        (ksa_exc.ConnectTimeout(f"Request to {URL} timed out"), TransportFailure.READ_TIMEOUT),
        (ksa_exc.SSLError("SSL exception connecting to x"), TransportFailure.TLS),
        (
            ksa_exc.UnknownConnectionError("Unexpected exception", requests.exceptions.InvalidURL("bad")),
            TransportFailure.OTHER,
        ),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), TransportFailure.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), None),  # a bare OSError is not a cloud failure
        (ksa_exc.NotFound(), None),
        (ValueError("bug"), None),
    ],
)
def test_transport_failure_classification_without_chain(
    exc: BaseException, kind: TransportFailure | None
) -> None:
    assert transport_failure_of(exc) is kind


def test_connection_refused_wrapped_in_sdk_exception_is_seen_through() -> None:
    inner = through_keystoneauth(refused_requests_error())
    wrapped = sdk_exc.SDKException(str(inner))
    wrapped.__context__ = inner
    assert transport_failure_of(wrapped) is TransportFailure.UNREACHABLE
    assert type(translate_error(wrapped, "identity")) is Unavailable


def test_authorize_failure_wrapped_in_sdk_exception_is_unauthorized() -> None:
    inner = ksa(
        401, {"error": {"code": 401, "message": "The request you have made requires authentication."}}
    )
    wrapped = sdk_exc.SDKException(str(inner))
    wrapped.__cause__ = inner
    error = translate_error(wrapped, "identity")
    assert type(error) is Unauthorized
    assert error.message == "identity: The request you have made requires authentication."


# --------------------------------------------------------------------------------------------------
# Other openstacksdk / keystoneauth exceptions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (sdk_exc.ResourceTimeout("Timeout waiting for Server:1 to transition to ACTIVE"), Timeout),
        (sdk_exc.ResourceFailure("Server:1 transitioned to failure state ERROR"), ResourceFailed),
        (sdk_exc.DuplicateResource("More than one Server exists with the name web"), Conflict),
        (sdk_exc.InvalidRequest("bad filter"), BadRequest),
        (ksa_exc.AuthorizationFailure("Cannot authorize API client."), Unauthorized),
        (ksa_exc.MissingAuthPlugin("An auth plugin is required"), Unauthorized),
        (ksa_exc.EndpointNotFound("No endpoint for compute"), CloudError),
        (sdk_exc.SDKException("something odd"), CloudError),
        (ValueError("not ours"), CloudError),
    ],
)
def test_other_exceptions(exc: BaseException, expected: type[CloudError]) -> None:
    error = translate_error(exc, "compute")
    assert type(error) is expected
    assert error.message == f"compute: {exc}"


def test_cloud_errors_pass_through_unchanged() -> None:
    mine = Conflict("already decided", service="compute")
    assert translate_error(mine, "network") is mine


def test_translated_messages_are_redacted() -> None:
    # NOTE: Nova's schema validation echoes the rejected value, twice.
    message = "Invalid input for field/attribute adminPass. Value: hunter2. 'hunter2' is too short"
    body = {
        "badRequest": {"message": f"{message}; token gAAAAABlZ1abcdefghijklmnopqrstuvwxyz0123", "code": 400}
    }
    error = translate_error(ksa(400, body), "compute")
    assert "hunter2" not in str(error) and "gAAAAAB" not in str(error)
    assert "Invalid input for field/attribute adminPass" in str(error)
    failure = ksa_exc.ConnectFailure(
        "Unable to establish connection to https://admin:s3cr3t@cloud.test:5000/v3"
    )
    assert "s3cr3t" not in translate_error(failure, "identity").message


# --------------------------------------------------------------------------------------------------
# redact()
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"auth": {"identity": {"password": {"user": {"name": "u", "password": "s3cr3t!"}}}}}', "s3cr3t!"),
        ("{'X-Auth-Token': 'abcdef0123456789'}", "abcdef0123456789"),
        ("X-Auth-Token: abcdef0123456789", "abcdef0123456789"),
        ("x-subject-token: 4f2a9c", "4f2a9c"),
        ("Authorization: Bearer eyJabc.def.ghi", "eyJabc"),
        ("GET /v3/auth?password=hunter2&user=u", "hunter2"),
        ('{"application_credential_secret": "ac-secret-value"}', "ac-secret-value"),
        ('{"application_credential": {"id": "ac1", "secret": "ac-secret-value"}}', "ac-secret-value"),
        ('{"server": {"id": "s1", "adminPass": "GeneratedRoot1"}}', "GeneratedRoot1"),
        ("token gAAAAABlZ1m3xYzT0kEnVaLuE_9-abcDEF123456789== used", "gAAAAABlZ1m3"),
        ("postgresql://stackyard:db-pass@localhost/stackyard", "db-pass"),
        ("Password = 'Mixed-Case'", "Mixed-Case"),
        ("client_secret=oidc-secret", "oidc-secret"),
    ],
)
def test_redact_removes_secrets(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert "***" in cleaned
    assert redact(cleaned) == cleaned  # stable when applied twice


@pytest.mark.parametrize(
    "text",
    [
        "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances",
        '{"server": {"id": "6b4f", "name": "web-1", "status": "ACTIVE"}}',
        "The token has expired",
        "Password reset is not supported",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_keeps_the_key_so_the_reader_knows_what_was_hidden() -> None:
    assert redact('{"password": "x1"}') == '{"password": "***"}'
    assert redact("X-Auth-Token: abc") == "X-Auth-Token: ***"


def test_keystoneauth_error_without_response_keeps_its_own_message() -> None:
    error = translate_error(ksa_exc.NotFound(message="Image img-3 not found", request_id="req-3"), "image")
    assert error.message == "image: Image img-3 not found"
    assert translate_error(ksa_exc.NotFound(), "image").message == "image: HTTP 404 Not Found"
