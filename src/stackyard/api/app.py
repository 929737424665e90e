"""The FastAPI app factory: routers, error mapping, request ids, access log, metrics, CORS."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Match

from stackyard import __version__
from stackyard.api.errors import install_error_handlers, internal_error_response, stackyard_error_response
from stackyard.api.requestctx import REQUEST_ID_HEADER, new_request_id, set_request_id
from stackyard.api.routes import (
    auth,
    courses,
    exports,
    health,
    instances,
    inventory,
    jobs,
    pricing,
    providers,
    quota,
    storage,
    students,
)
from stackyard.api.schemas import ErrorBody
from stackyard.api.state import AppState
from stackyard.errors import ValidationError

_ACCESS = logging.getLogger("stackyard.access")

# Every error has the one shape of stackyard.api.errors, and the spec says so; otherwise FastAPI would
# document its own 422 body (`{"detail": [...]}`), which this API never sends.
_ERRORS: tuple[tuple[int, str], ...] = (
    (400, "Malformed request body, or the cloud rejected the request."),
    (401, "No valid credentials (see WWW-Authenticate)."),
    (403, "The caller's role does not allow this, or the cloud's policy does not."),
    (404, "No such provider or resource, or it is outside the caller's project."),
    (409, "Conflict with the resource's state, or a quota would be exceeded."),
    (422, "Invalid input; `details.field` names the field."),
    (429, "Too many requests; see Retry-After."),
    (500, "Internal error; the request id finds it in the server log."),
    (502, "The cloud failed or rejected the provider's credentials."),
    (503, "The cloud is unavailable, or the service is misconfigured."),
    (504, "The cloud did not answer within the deadline."),
)
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description} for status, description in _ERRORS
}


def _route_template(request: Request) -> str:
    """The matched route's path template (bounded label values for metrics), else "unmatched"."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


def create_app(state: AppState) -> FastAPI:
    """An app serving `state`'s providers; the caller owns `state` and closes it after the app stops."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.start_background()
        yield
        state.close()

    app = FastAPI(
        title="stackyard",
        version=__version__,
        description="Operate OpenStack clouds for others: instances, cost estimates, quotas, exports.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.stackyard = state
    install_error_handlers(app)

    @app.middleware("http")
    async def refuse_nul(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # NOTE: PostgreSQL text cannot hold NUL; an id or filter with one would reach a query and fail
        # there as a server error. No route takes one, so it is refused before any route runs.
        query = request.scope.get("query_string", b"").lower()
        if "\x00" in request.scope.get("path", "") or b"%00" in query or b"\x00" in query:
            where = "path" if "\x00" in request.scope.get("path", "") else "query"
            return stackyard_error_response(ValidationError(where, "must not contain NUL characters"))
        return await call_next(request)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        try:
            try:
                response = await call_next(request)
            except Exception as exc:  # noqa: BLE001 (answered here, inside the request id's context)
                response = internal_error_response(exc)
            status = response.status_code
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(request)
            state.metrics.observe_request(request.method, route, status, elapsed)
            _ACCESS.info(
                "%s %s %s",
                request.method,
                route,
                status,
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": request.client.host if request.client else None,
                    "principal": getattr(request.state, "principal", None),
                },
            )
            set_request_id(None)

    if state.settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(state.settings.api.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-Auth-Token", "X-API-Key", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Location"],
        )
    app.include_router(health.router, responses={500: _ERROR_RESPONSES[500]})
    for router in (
        auth.router,
        providers.router,
        instances.router,
        pricing.router,
        students.router,
        courses.router,
        quota.router,
        jobs.router,
        exports.router,
        storage.router,
        inventory.router,
    ):
        app.include_router(router, responses=_ERROR_RESPONSES)
    return app
