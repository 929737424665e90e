"""Translate keystoneauth1/openstacksdk/requests failures into the CloudError tree, secrets redacted."""

from __future__ import annotations

import errno
import html
import json
import re
import socket
import ssl
from collections.abc import Iterator
from enum import StrEnum
from http.client import RemoteDisconnected

import requests
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

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

# --------------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------------

_REDACTED = "***"

# Keys whose values are secrets wherever they appear: JSON bodies, dict reprs, headers, query strings.
# NOTE: Nova returns the generated root password as `adminPass` in the server-create response.
_SENSITIVE_KEYS = (
    r"password|passwd|adminpass|admin_pass|new_password|original_password"
    r"|application_credential_secret|client_secret|secret|passcode|totp"
    r"|x-auth-token|x-subject-token|x-service-token|auth_token|access_token|refresh_token|id_token|token"
    r"|authorization|api_key|apikey|private_key"
)
# `"password": "s3cret"`, `'token'='abc'`, `password: "x"` — the value is quoted.
_QUOTED_VALUE_RE = re.compile(
    rf"""(?P<head>\b(?:{_SENSITIVE_KEYS})["']?\s*[:=]\s*)(?P<q>["'])(?P<value>.*?)(?<!\\)(?P=q)""",
    re.IGNORECASE,
)
# `X-Auth-Token: abc`, `password=abc&`, `Authorization: Bearer abc` — the value runs to a delimiter.
_BARE_VALUE_RE = re.compile(
    rf"""(?P<head>\b(?:{_SENSITIVE_KEYS})["']?\s*[:=]\s*)(?P<value>(?:(?:bearer|basic|negotiate)\s+)?[^\s"',;&{{}}\[\]]+)""",
    re.IGNORECASE,
)
# Keystone fernet tokens are url-safe base64 of a payload starting with the 0x80 version byte.
_FERNET_RE = re.compile(r"gAAAAA[A-Za-z0-9_\-]{20,}={0,2}")
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
_URL_USERINFO_RE = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)(?P<value>[^/\s@]+)(?=@)", re.I)


# NOTE: Nova's JSON-schema errors echo the rejected value: "Invalid input for field/attribute adminPass.
# Value: hunter2. 'hunter2' is too short".
_SCHEMA_ECHO_RE = re.compile(
    rf"(?P<head>field/attribute (?:{_SENSITIVE_KEYS})\. Value: )(?P<value>.+?)(?=\. |\.?$)",
    re.IGNORECASE | re.MULTILINE,
)
# Found values are also masked wherever else they are echoed, unless too short or too common to be secret.
_MIN_ECHO = 4
_NOT_SECRET = frozenset({_REDACTED, "null", "none", "true", "false", "bearer", "basic"})


def redact(text: str) -> str:
    """Return `text` with passwords, tokens, application-credential secrets and fernet tokens masked."""
    found: set[str] = set()

    def mask(match: re.Match[str], quote: str = "") -> str:
        value = match["value"]
        if value.lower() not in _NOT_SECRET:
            found.add(value)
        return f"{match['head']}{quote}{_REDACTED}{quote}"

    text = _QUOTED_VALUE_RE.sub(lambda m: mask(m, m["q"]), text)
    text = _BARE_VALUE_RE.sub(lambda m: m[0] if m["value"] == _REDACTED else mask(m), text)
    text = _SCHEMA_ECHO_RE.sub(mask, text)
    text = _URL_USERINFO_RE.sub(mask, text)
    for value in sorted(found, key=len, reverse=True):
        if len(value) >= _MIN_ECHO:
            text = text.replace(value, _REDACTED)
    text = _FERNET_RE.sub(_REDACTED, text)
    return _JWT_RE.sub(_REDACTED, text)


# --------------------------------------------------------------------------------------------------
# Facts about third-party exceptions
# --------------------------------------------------------------------------------------------------


class TransportFailure(StrEnum):
    """What went wrong below HTTP, which decides whether a request may have reached the service."""

    UNREACHABLE = "unreachable"  # never connected: refused, DNS failure, no route
    CONNECT_TIMEOUT = "connect_timeout"  # never connected: the TCP/TLS handshake timed out
    DROPPED = "dropped"  # the connection broke; the request may have been received
    READ_TIMEOUT = "read_timeout"  # the request was sent; no answer in time
    TLS = "tls"  # certificate or handshake problem; retrying will not help
    OTHER = "other"  # a transport error we cannot place (bad URL, proxy config...)

    @property
    def is_sent_maybe(self) -> bool:
        """True when the service may have received and acted on the request."""
        return self in (TransportFailure.DROPPED, TransportFailure.READ_TIMEOUT)

    @property
    def is_unreachable(self) -> bool:
        """True when the endpoint could not be reached at all (nothing was sent)."""
        return self in (TransportFailure.UNREACHABLE, TransportFailure.CONNECT_TIMEOUT)


_UNREACHABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
)
_UNREACHABLE_TEXT_RE = re.compile(
    r"connection refused|failed to establish a new connection|name or service not known"
    r"|nodename nor servname|temporary failure in name resolution|no address associated with hostname"
    r"|name ?resolution|no route to host|network is unreachable|host is unreachable|network is down",
    re.IGNORECASE,
)
_CONNECT_TIMEOUT_TEXT_RE = re.compile(r"connect timeout=|connecttimeout", re.IGNORECASE)
_READ_TIMEOUT_TEXT_RE = re.compile(r"read timed out|read timeout=|timed out", re.IGNORECASE)
_DROPPED_TEXT_RE = re.compile(
    r"connection aborted|connection reset|remote ?disconnected|broken pipe|remote end closed",
    re.IGNORECASE,
)

# Exceptions that are transport failures by themselves (no HTTP response was received).
_TRANSPORT_TYPES: tuple[type[BaseException], ...] = (
    ksa_exc.ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    ssl.SSLError,
)
# Exceptions that only wrap the real failure, found in __cause__/__context__.
# NOTE: openstacksdk re-raises keystoneauth errors as bare SDKException (Connection.authorize), and
# keystoneauth raises AuthorizationFailure/DiscoveryFailure around connection and HTTP errors.
_WRAPPER_TYPES: tuple[type[BaseException], ...] = (
    ksa_exc.AuthorizationFailure,
    ksa_exc.DiscoveryFailure,
)
_MAX_CHAIN = 16


def _is_wrapper(exc: BaseException) -> bool:
    return type(exc) in (sdk_exc.SDKException, ksa_exc.ClientException) or isinstance(exc, _WRAPPER_TYPES)


def is_cloud_exception(exc: BaseException) -> bool:
    """True when `exc` came from talking to a cloud (not a programming error in our own code)."""
    known = (ksa_exc.ClientException, sdk_exc.SDKException, requests.exceptions.RequestException, CloudError)
    return isinstance(exc, (*known, *_TRANSPORT_TYPES))


def root_cause_of(exc: BaseException) -> BaseException:
    """The informative exception behind generic wrappers (bare SDKException, AuthorizationFailure...)."""
    seen: set[int] = set()
    while _is_wrapper(exc) and id(exc) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None or not is_cloud_exception(inner):
            break
        exc = inner
    return exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it was raised from, including urllib3's MaxRetryError.reason and args."""
    stack = [exc]
    seen: set[int] = set()
    while stack and len(seen) < _MAX_CHAIN:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            getattr(current, "original", None),
            *current.args,
        ]
        stack.extend(item for item in linked if isinstance(item, BaseException))


def transport_failure_of(exc: BaseException) -> TransportFailure | None:
    """Classify a failure that happened below HTTP; None when `exc` is not a transport failure."""
    exc = root_cause_of(exc)
    if not isinstance(exc, _TRANSPORT_TYPES):
        return None
    chain = list(_chain(exc))
    if any(isinstance(e, (requests.exceptions.SSLError, ssl.SSLError, ksa_exc.SSLError)) for e in chain):
        return TransportFailure.TLS
    if any(isinstance(e, requests.exceptions.ConnectTimeout) for e in chain):
        return TransportFailure.CONNECT_TIMEOUT
    if any(_is_unreachable_oserror(e) for e in chain):
        return TransportFailure.UNREACHABLE
    if any(isinstance(e, (requests.exceptions.ReadTimeout, TimeoutError)) for e in chain):
        return TransportFailure.READ_TIMEOUT
    dropped = (
        ConnectionResetError,
        ConnectionAbortedError,
        BrokenPipeError,
        RemoteDisconnected,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    )
    if any(isinstance(e, dropped) for e in chain):
        return TransportFailure.DROPPED
    # NOTE: keystoneauth raises ConnectFailure/ConnectTimeout from a fresh message that embeds str() of the
    # requests error; when the chain was lost (pickled, re-raised) that text is all we have.
    text = " ".join(str(e) for e in chain)
    if _CONNECT_TIMEOUT_TEXT_RE.search(text):
        return TransportFailure.CONNECT_TIMEOUT
    if _UNREACHABLE_TEXT_RE.search(text):
        return TransportFailure.UNREACHABLE
    if _DROPPED_TEXT_RE.search(text):
        return TransportFailure.DROPPED
    if isinstance(exc, (ksa_exc.ConnectTimeout, requests.exceptions.Timeout)) or _READ_TIMEOUT_TEXT_RE.search(
        text
    ):
        # NOTE: keystoneauth maps every requests Timeout, read timeouts included, to ConnectTimeout:
        # without the chain we must assume the request was sent.
        return TransportFailure.READ_TIMEOUT
    if isinstance(exc, ksa_exc.UnknownConnectionError):
        return TransportFailure.OTHER
    if isinstance(exc, (ksa_exc.ConnectFailure, requests.exceptions.ConnectionError, ConnectionError)):
        return TransportFailure.DROPPED
    return TransportFailure.OTHER


def _is_unreachable_oserror(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS


_SDK_CLASS_STATUS: tuple[tuple[type[sdk_exc.HttpException], int], ...] = (
    (sdk_exc.BadRequestException, 400),
    (sdk_exc.ForbiddenException, 403),
    (sdk_exc.NotFoundException, 404),
    (sdk_exc.ConflictException, 409),
    (sdk_exc.PreconditionFailedException, 412),
)


def http_status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception reports, from keystoneauth, openstacksdk or requests."""
    exc = root_cause_of(exc)
    if isinstance(exc, CloudError):
        return exc.status_code
    if isinstance(exc, ksa_exc.HttpError):
        return exc.http_status or None
    if isinstance(exc, ksa_exc.MissingAuthMethods):
        return 401
    if isinstance(exc, sdk_exc.HttpException):
        if exc.status_code is not None:
            return exc.status_code
        # NOTE: openstacksdk raises NotFoundException("No Server found for x") without a response.
        for cls, status in _SDK_CLASS_STATUS:
            if isinstance(exc, cls):
                return status
        return None
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return exc.response.status_code
    return None


def response_of(exc: BaseException) -> requests.Response | None:
    """The HTTP response attached to an exception, if any."""
    response = getattr(root_cause_of(exc), "response", None)
    return response if isinstance(response, requests.Response) else None


def header_of(exc: BaseException, name: str) -> str | None:
    """A response header (case-insensitive) of the response attached to `exc`."""
    response = response_of(exc)
    if response is None:
        return None
    value = response.headers.get(name)
    return value if isinstance(value, str) else None


_REQUEST_ID_HEADERS = ("x-openstack-request-id", "x-compute-request-id")


def request_id_of(exc: BaseException) -> str | None:
    """The request id the service gave (x-openstack-request-id / x-compute-request-id)."""
    root = root_cause_of(exc)
    for header in _REQUEST_ID_HEADERS:
        value = header_of(root, header)
        if value:
            return value
    value = getattr(root, "request_id", None)
    return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------------------------------
# The service's own message
# --------------------------------------------------------------------------------------------------

_MAX_MESSAGE = 1000
# keystoneauth formats its message as "<message> (HTTP 404) (Request-ID: req-...)"
_SUFFIX_RE = re.compile(r"\s*\(HTTP \d{3}\)(\s*\(Request-ID: [^)]*\))?$")
_SDK_DEFAULT_RE = re.compile(r"\w+: (\d{3}|Unknown error)")
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


def _message_from_json(body: object, depth: int = 0) -> tuple[str | None, list[str]]:
    """(message, kinds) from the error body shapes OpenStack services use; kinds are error type names."""
    if depth > 3 or not isinstance(body, dict):
        return None, []
    kinds = [str(body["type"])] if isinstance(body.get("type"), str) else []
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        # API-SIG guideline shape (placement, newer ironic): {"errors": [{"title", "detail", "code"}]}.
        first = errors[0]
        text = first.get("detail") or first.get("title")
        code = first.get("code")
        return (str(text) if text else None), ([str(code)] if code else [])
    for key in ("message", "faultstring", "description"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value, kinds
    embedded = body.get("error_message")
    if isinstance(embedded, str):
        # NOTE: older ironic double-encodes: {"error_message": "{\"faultstring\": ...}"}.
        try:
            decoded: object = json.loads(embedded)
        except ValueError:
            return embedded, kinds
        body = {"error_message": decoded}
    for key, value in body.items():
        # Nova/Cinder {"forbidden": {"message", "code"}}, Neutron {"NeutronError": {"type", "message"}},
        # Keystone {"error": {"message", "code", "title"}}.
        text, inner_kinds = _message_from_json(value, depth + 1)
        if text:
            return text, [key, *inner_kinds]
    return None, kinds


def _message_from_text(text: str) -> str:
    lines: list[str] = []
    for raw in text.splitlines():
        line = _SPACE_RE.sub(" ", html.unescape(_TAG_RE.sub(" ", raw))).strip()
        if line and line not in lines:
            lines.append(line)
    return ": ".join(lines)


def _message_from_response(response: requests.Response) -> tuple[str | None, list[str]]:
    content_type = response.headers.get("content-type", "") or ""
    try:
        if "json" in content_type:
            return _message_from_json(response.json())
        if content_type.startswith("text/") and response.text:
            return (_message_from_text(response.text) or None), []
    except ValueError:  # a body that lies about being JSON
        return (_message_from_text(response.text) or None), []
    return None, []


def _own_message(exc: BaseException) -> str | None:
    """The message a keystoneauth/openstacksdk exception was raised with, unless it is a stock phrase."""
    if not isinstance(exc, (ksa_exc.HttpError, sdk_exc.SDKException)):
        return None
    own = _SUFFIX_RE.sub("", exc.message)
    # keystoneauth's class default ("Forbidden"); openstacksdk's "Error" and "HttpException: 503".
    stock = ("Unrecognized schema in response body.", getattr(type(exc), "message", None), "Error", "")
    if own in stock or _SDK_DEFAULT_RE.fullmatch(own):
        return None
    return own


def _describe(exc: BaseException, status: int | None) -> tuple[str, list[str]]:
    """The most useful human message for `exc`, and error kinds found in its body."""
    response = response_of(exc)
    message: str | None = None
    kinds: list[str] = []
    if response is not None:
        message, kinds = _message_from_response(response)
    reason = response.reason if response is not None and response.reason else None
    if not message:
        # openstacksdk falls back to the HTTP reason phrase in `details`; that says nothing new.
        details = getattr(exc, "details", None)
        if isinstance(details, str) and details.strip() and details != reason:
            message = details
    if not message:
        message = _own_message(exc)
    if not message and status is not None:
        message = f"HTTP {status}" + (f" {reason}" if reason else "")
        if not reason and isinstance(exc, ksa_exc.HttpError):
            message += f" {type(exc).message}"
    if not message:
        message = str(exc) or type(exc).__name__
    message = _SPACE_RE.sub(" ", message).strip()
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return message, kinds


# --------------------------------------------------------------------------------------------------
# Translation
# --------------------------------------------------------------------------------------------------

_QUOTA_TEXT_RE = re.compile(r"quota|over[\s_-]?limit|limit[\s_-]?exceeded|\bexceed(?:s|ed)?\b", re.IGNORECASE)
_QUOTA_KINDS = frozenset({"overquota", "overlimit", "quotaexceeded", "quotaerror", "volumelimitexceeded"})


def _is_quota(message: str, kinds: list[str]) -> bool:
    # NOTE: Nova answers 403 "Quota exceeded for instances: ..." ({"forbidden": ...}); Neutron 409
    # {"NeutronError": {"type": "OverQuota"}}; Cinder 413 {"overLimit": {"message": "VolumeLimitExceeded:
    # Maximum number of volumes allowed (10) exceeded for quota 'volumes'."}}; Glance 413 on image quota.
    return any(kind.lower() in _QUOTA_KINDS for kind in kinds) or bool(_QUOTA_TEXT_RE.search(message))


def _class_for_status(status: int, message: str, kinds: list[str]) -> type[CloudError]:
    if status in (403, 409, 413) and _is_quota(message, kinds):
        return QuotaExceeded
    by_status: dict[int, type[CloudError]] = {
        400: BadRequest,
        401: Unauthorized,
        402: Forbidden,
        403: Forbidden,
        404: NotFound,
        408: Timeout,
        409: Conflict,
        410: NotFound,
        412: Conflict,
        415: BadRequest,
        429: Unavailable,
    }
    if status in by_status:
        return by_status[status]
    if 400 <= status < 500:
        return BadRequest
    if 500 <= status < 600:
        return Unavailable
    return CloudError


def _class_for_exception(exc: BaseException) -> type[CloudError]:
    transport = transport_failure_of(exc)
    if transport is not None:
        timed_out = transport in (TransportFailure.CONNECT_TIMEOUT, TransportFailure.READ_TIMEOUT)
        return Timeout if timed_out else Unavailable
    table: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], type[CloudError]], ...] = (
        (sdk_exc.ResourceTimeout, Timeout),
        (sdk_exc.ResourceFailure, ResourceFailed),
        (sdk_exc.DuplicateResource, Conflict),
        (
            (
                sdk_exc.InvalidRequest,
                sdk_exc.ValidationException,
                sdk_exc.InvalidResourceQuery,
                sdk_exc.MethodNotSupported,
            ),
            BadRequest,
        ),
        (
            (ksa_exc.AuthPluginException, ksa_exc.MissingAuthMethods, ksa_exc.AuthorizationFailure),
            Unauthorized,
        ),
    )
    for types, cls in table:
        if isinstance(exc, types):
            return cls
    return CloudError


def translate_error(exc: BaseException, service: str) -> CloudError:
    """Map any failure of a call to `service` into the CloudError tree (message redacted, request id kept).

    A CloudError passes through unchanged; anything unrecognised becomes a plain CloudError.
    """
    root = root_cause_of(exc)
    if isinstance(root, CloudError):
        return root
    status = http_status_of(root)
    message, kinds = _describe(root, status)
    cls = _class_for_status(status, message, kinds) if status is not None else _class_for_exception(root)
    text = redact(f"{service}: {message}")
    if cls is ResourceFailed:
        return ResourceFailed(text, service=service)
    return cls(text, service=service, status_code=status, request_id=request_id_of(root))
