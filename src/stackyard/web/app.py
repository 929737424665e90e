"""Mount the dashboard on the API's app: the /ui routers, its static files, its templates and CSRF key."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from stackyard.api.state import AppState
from stackyard.api.wiring import create_app_from_environment as create_api_from_environment
from stackyard.auth.tokens import load_or_create_secret
from stackyard.web.render import WebState, make_templates
from stackyard.web.routes import account, exports, inventory, overview, people, reconcile, servers
from stackyard.web.session import CsrfKeys

STATIC_DIR = Path(__file__).parent / "static"


def install_ui(app: FastAPI) -> None:
    """Add /ui to an app built by `stackyard.api.app.create_app`; it uses that app's state and auth."""
    state = app.state.stackyard
    if not isinstance(state, AppState):
        raise RuntimeError("install_ui needs an app built by stackyard.api.app.create_app")
    settings = state.settings
    # The same secret the bearer tokens are signed with (every replica shares it), so a CSRF token
    # made by one worker is accepted by the others.
    secret = settings.api.secret_key or load_or_create_secret(settings.data_dir.expanduser() / "secret_key")
    app.state.stackyard_web = WebState(templates=make_templates(), csrf=CsrfKeys(secret))
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    for module in (account, overview, servers, people, reconcile, exports, inventory):
        app.include_router(module.router)

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)


def create_app_from_environment() -> FastAPI:
    """uvicorn's factory for `stackyard serve`: the REST API with the dashboard at /ui."""
    app = create_api_from_environment()
    install_ui(app)
    return app
