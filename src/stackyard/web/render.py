"""Templates and the dashboard's route class: pages render as HTML, and errors become HTML pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from stackyard.api.errors import status_of
from stackyard.api.requestctx import current_request_id
from stackyard.cloud.errormap import redact
from stackyard.errors import StackyardError, Unauthenticated, ValidationError
from stackyard.web import format as fmt
from stackyard.web.session import CsrfKeys

# Pages load only this site's own script and styles (no inline script: htmx reads its settings from
# attributes), may not be framed, and post forms only back here. Inline style attributes are allowed
# for the widths of progress and usage bars.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SignInRequired(Exception):
    """No usable session: the page answers with a redirect to the sign-in form."""


class CsrfRejected(Exception):
    """A state-changing request without a valid CSRF token."""


@dataclass
class WebState:
    """Built once per worker by `install_ui`."""

    templates: jinja2.Environment
    csrf: CsrfKeys


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("stackyard.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        bytes=fmt.human_bytes,
        rate=fmt.human_rate,
        duration=fmt.human_duration,
        money=fmt.money,
        when=fmt.when,
    )
    env.globals["percent"] = fmt.percent
    return env


def web_state(request: Request) -> WebState:
    found = getattr(request.app.state, "stackyard_web", None)
    if not isinstance(found, WebState):
        raise RuntimeError("the dashboard was not installed with stackyard.web.install_ui")
    return found


def render(
    request: Request, template: str, context: Mapping[str, object], *, status_code: int = 200
) -> HTMLResponse:
    """A page: `context` plus what every page has (the request, the signed-in user, the CSRF token)."""
    env = web_state(request).templates
    values: dict[str, object] = {
        "request": request,
        "user": getattr(request.state, "ui_principal", None),
        "csrf_token": getattr(request.state, "ui_csrf", ""),
        "request_id": current_request_id(),
        "nav": "",
    }
    values.update(context)
    response = HTMLResponse(env.get_template(template).render(values), status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "message": message}, status_code=status)


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("HX-Request"):
        # htmx follows redirects inside the fragment; this makes the whole page go to sign-in instead.
        response = Response(status_code=204)
        response.headers["HX-Redirect"] = "/ui/login"
        return response
    return RedirectResponse(f"/ui/login?next={quote(target, safe='/')}", status_code=303)


class UiRoute(APIRoute):
    """A dashboard route: every failure is answered as an HTML page, never as JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return _sign_in_redirect(request)
            except Unauthenticated:
                return _sign_in_redirect(request)
            except CsrfRejected:
                return _error_page(
                    request,
                    403,
                    "Form expired",
                    "The form's CSRF token is missing or does not match your session. Reload the page "
                    "and try again.",
                )
            except RequestValidationError as exc:
                fields = (
                    ", ".join(str(error["loc"][-1]) for error in exc.errors() if error.get("loc"))
                    or "the request"
                )
                return _error_page(request, 400, "Invalid request", f"Check these fields: {fields}.")
            except ValidationError as exc:
                return _error_page(request, 422, "Invalid input", redact(f"{exc.field}: {exc.message}"))
            except StackyardError as exc:
                status, code = status_of(exc)
                titles = {403: "Not allowed", 404: "Not found", 409: "Conflict"}
                return _error_page(
                    request, status, titles.get(status, code.replace("_", " ")), redact(str(exc))
                )

        return guarded
