"""Unauthenticated operational routes: liveness, readiness (database + clouds) and Prometheus metrics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from stackyard.api.deps import State
from stackyard.errors import StackyardError

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Check(BaseModel):
    name: str
    ok: bool
    message: str | None = None


class Readiness(BaseModel):
    status: str
    checks: list[Check]


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(state: State) -> Response:
    """Ready when the database answers and every configured provider is reachable with working auth."""
    checks: list[Check] = []
    try:
        with state.sessions() as session:
            session.execute(text("SELECT 1"))
        checks.append(Check(name="database", ok=True))
    except Exception as exc:  # noqa: BLE001 (any failure means not ready; the message says which)
        checks.append(Check(name="database", ok=False, message=type(exc).__name__))

    def provider_check(name: str) -> Check:
        try:
            status = state.providers[name].status()
        except StackyardError as exc:
            return Check(name=f"provider:{name}", ok=False, message=str(exc))
        ok = status.is_reachable and status.is_auth_ok
        return Check(name=f"provider:{name}", ok=ok, message=None if ok else status.message)

    names = sorted(state.providers)
    if names:
        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            checks.extend(pool.map(provider_check, names))
    ready = all(c.ok for c in checks)
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(state: State) -> Response:
    """Prometheus text format."""
    payload, content_type = state.metrics.exposition()
    return Response(payload, media_type=content_type)
