"""Map stackyard's exception tree to HTTP: one JSON error shape, the right status, never a secret."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stackyard.api.requestctx import current_request_id
from stackyard.cloud.errormap import redact
from stackyard.errors import (
    AuthError,
    BadRequest,
    CloudError,
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
from stackyard.quotas.roster import RosterError

_LOG = logging.getLogger(__name__)

# Most specific first: the first class the error is an instance of decides.
_STATUS: tuple[tuple[type[StackyardError], int, str], ...] = (
    (ValidationError, 422, "validation_error"),
    (Unauthenticated, 401, "unauthenticated"),
    (PermissionDenied, 403, "permission_denied"),
    (RateLimited, 429, "rate_limited"),
    (AuthError, 403, "permission_denied"),
    (NotFound, 404, "not_found"),
    (QuotaExceeded, 409, "quota_exceeded"),
    (Conflict, 409, "conflict"),
    (BadRequest, 400, "cloud_bad_request"),
    (Forbidden, 403, "cloud_forbidden"),
    # The provider's own credentials were rejected: the cloud side is broken, not the caller's request.
    (Unauthorized, 502, "cloud_unauthorized"),
    (Unavailable, 503, "cloud_unavailable"),
    (Timeout, 504, "cloud_timeout"),
    (ResourceFailed, 502, "cloud_resource_failed"),
    (CloudError, 502, "cloud_error"),
    (ConfigError, 503, "misconfigured"),
)


def error_body(code: str, message: str, details: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "error": {
            "code": code,
            "message": redact(message),
            "details": details or {},
            "request_id": current_request_id(),
        }
    }


def status_of(exc: StackyardError) -> tuple[int, str]:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal_error"


def _details(exc: StackyardError) -> dict[str, object]:
    if isinstance(exc, RosterError):
        return {
            "field": exc.field,
            "rows": [{"line": e.line, "field": e.field, "message": e.message} for e in exc.errors],
        }
    if isinstance(exc, ValidationError):
        return {"field": exc.field}
    if isinstance(exc, CloudError):
        details: dict[str, object] = {}
        if exc.service:
            details["service"] = exc.service
        if exc.request_id:
            details["cloud_request_id"] = exc.request_id
        if exc.status_code:
            details["cloud_status"] = exc.status_code
        if isinstance(exc, ResourceFailed) and exc.fault:
            details["fault"] = redact(exc.fault)
        return details
    if isinstance(exc, RateLimited):
        return {"retry_after": round(exc.retry_after, 1)}
    return {}


def stackyard_error_response(exc: StackyardError) -> JSONResponse:
    status, code = status_of(exc)
    message = exc.message if isinstance(exc, ValidationError | CloudError) else str(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="stackyard"'
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if status >= 500:
        _LOG.warning("request failed: %s", exc, extra={"error_code": code, "status": status})
    return JSONResponse(error_body(code, message, _details(exc)), status_code=status, headers=headers)


def _field_of(location: tuple[int | str, ...]) -> str:
    """`("body", "network_ids", 0)` names the field `network_ids[0]`; the source part is dropped."""
    sources = ("body", "query", "path", "header")
    parts = list(location[1:] if location and location[0] in sources else location)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StackyardError)
    async def _stackyard(_request: Request, exc: StackyardError) -> JSONResponse:
        return stackyard_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": _field_of(tuple(err.get("loc", ()))), "message": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        return JSONResponse(
            error_body(
                "validation_error",
                f"{first['field']}: {first['message']}",
                {"field": first["field"], "problems": problems},
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 400: "bad_request"}
        return JSONResponse(
            error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Normally unreached: the app's request middleware answers unhandled errors itself (see
        # internal_error_response); this handler runs outside it, where the request id is gone.
        return internal_error_response(exc)


def internal_error_response(exc: Exception) -> JSONResponse:
    """The 500 for an error nothing else handled, logged with its traceback and the request id.

    Called by the request middleware, inside the request's context: Starlette runs handlers of
    `Exception` in its outermost middleware, after the request id has been cleared, so the body and
    headers there would carry none.
    """
    _LOG.error("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal error; see the server log"), status_code=500)
