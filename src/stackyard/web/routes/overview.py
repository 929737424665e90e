"""The overview: per provider and region, instances by status, quota usage, running jobs, audit events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from stackyard.web.deps import SignedIn
from stackyard.web.render import UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/ui/", response_class=HTMLResponse)
def overview(request: Request, viewer: SignedIn) -> HTMLResponse:
    return render(request, "overview.html", {"nav": "overview"})
