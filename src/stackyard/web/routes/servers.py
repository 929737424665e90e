"""Instances: a sortable, filterable, paged table; detail with cost; actions with confirmation; create."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from stackyard.api.routes.instances import accrued_cost
from stackyard.api.state import AppState
from stackyard.cloud.models import AddressKind, Instance
from stackyard.cloud.status import ServerStatus
from stackyard.db.engine import transaction
from stackyard.errors import NotFound, StackyardError, ValidationError
from stackyard.pricing.models import AccruedCost, Estimate
from stackyard.pricing.service import PricingService
from stackyard.providers.base import InstanceAction, InstancePlan, InstanceQuery, InstanceSort, Provider
from stackyard.web.deps import Acting, SignedIn, Viewer
from stackyard.web.render import UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

PAGE_SIZES = (10, 25, 50, 100)
SORTS = {sort.value: sort for sort in InstanceSort}  # the cloud sorts, across every page
ACTIONS = ("start", "stop", "reboot", "delete")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_CREATE = 10


def pick_provider(state: AppState, name: str | None) -> Provider:
    if not state.providers:
        raise NotFound("no provider is configured")
    if not name:
        return next(iter(state.providers.values()))
    found = state.providers.get(name)
    if found is None:
        raise NotFound(f"no provider named {name!r}")
    return found


def instance_cost(state: AppState, provider: Provider, instance: Instance, region: str | None) -> AccruedCost:
    """As `GET .../instances/{id}/cost` prices it: the current price book, since creation."""
    with transaction(state.sessions) as session:
        return accrued_cost(PricingService(session), provider, instance, region, state.clock.now())


def estimate(state: AppState, provider: Provider, flavor: str, count: int, region: str | None) -> Estimate:
    """As `POST .../estimates` prices planned instances."""
    with transaction(state.sessions) as session:
        book = PricingService(session).current()
    return provider.estimate_cost(InstancePlan(name="estimate", flavor=flavor, region=region), book, count)


@router.get("/ui/instances", response_class=HTMLResponse)
def list_instances(
    request: Request,
    viewer: SignedIn,
    provider: Annotated[str | None, Query(max_length=255)] = None,
    region: Annotated[str | None, Query(max_length=255)] = None,
    name: Annotated[str | None, Query(max_length=255)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    marker: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 25,
    sort: Annotated[str, Query(max_length=16)] = "created",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
) -> HTMLResponse:
    chosen = pick_provider(viewer.state, provider)
    status_value = ServerStatus(status) if status and status in ServerStatus.__members__ else None
    page = chosen.list_instances(
        viewer.scope,
        InstanceQuery(
            region=region or None,
            name=name or None,
            status=status_value,
            limit=limit,
            marker=marker or None,
            sort=SORTS.get(sort, InstanceSort.CREATED),
            descending=order == "desc",
        ),
    )
    items = list(page.items)
    filters = {"provider": chosen.name, "region": region or "", "name": name or "", "status": status or ""}
    base = {k: v for k, v in filters.items() if v}

    def link(**changes: object) -> str:
        params: dict[str, object] = {**base, "limit": limit, "sort": sort, "order": order}
        params.update(changes)
        return "/ui/instances?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})

    sort_links = {
        column: link(sort=column, order="asc" if sort != column or order == "desc" else "desc", marker=marker)
        for column in SORTS
    }
    return render(
        request,
        "instances/list.html",
        {
            "nav": "instances",
            "items": items,
            "provider": chosen,
            "providers": list(viewer.state.providers),
            "filters": filters,
            "statuses": [s.value for s in ServerStatus if s is not ServerStatus.UNKNOWN],
            "limit": limit,
            "page_sizes": PAGE_SIZES,
            "sort": sort,
            "order": order,
            "sort_links": sort_links,
            "next_link": link(marker=page.next_marker) if page.next_marker else None,
            "first_link": link() if marker else None,
        },
    )


def _create_context(viewer: Viewer, provider: Provider) -> dict[str, object]:
    return {
        "nav": "instances",
        "provider": provider,
        "providers": list(viewer.state.providers),
        "flavors": sorted(provider.flavors(), key=lambda f: (f.vcpus, f.ram_mib, f.name)),
        "images": sorted(provider.images(), key=lambda i: i.name),
        "max_count": MAX_CREATE,
    }


@router.get("/ui/instances/new", response_class=HTMLResponse)
def create_form(
    request: Request, viewer: SignedIn, provider: Annotated[str | None, Query(max_length=255)] = None
) -> HTMLResponse:
    chosen = pick_provider(viewer.state, provider)
    context = _create_context(viewer, chosen)
    context.update(errors={}, values={"name": "", "flavor": "", "image": "", "count": "1", "networks": ""})
    return render(request, "instances/new.html", context)


@router.get("/ui/instances/estimate", response_class=HTMLResponse)
def estimate_fragment(
    request: Request,
    viewer: SignedIn,
    provider: Annotated[str | None, Query(max_length=255)] = None,
    flavor: Annotated[str, Query(max_length=255)] = "",
    count: Annotated[str, Query(max_length=8)] = "1",
) -> HTMLResponse:
    """The live estimate under the create form (htmx swaps it in as flavor and count change)."""
    chosen = pick_provider(viewer.state, provider)
    error = None
    result = None
    if not flavor:
        error = "Choose a flavor to see its price."
    elif not count.isdigit() or not 1 <= int(count) <= MAX_CREATE:
        error = f"count: give a whole number from 1 to {MAX_CREATE}"
    else:
        try:
            result = estimate(viewer.state, chosen, flavor, int(count), None)
        except (ValidationError, NotFound) as exc:
            error = str(exc)
    return render(request, "instances/estimate.html", {"estimate": result, "error": error})


@router.post("/ui/instances", response_class=HTMLResponse)
def create_instances(
    request: Request,
    viewer: Acting,
    provider: Annotated[str, Form(max_length=255)] = "",
    name: Annotated[str, Form(max_length=255)] = "",
    flavor: Annotated[str, Form(max_length=255)] = "",
    image: Annotated[str, Form(max_length=255)] = "",
    count: Annotated[str, Form(max_length=8)] = "1",
    networks: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    chosen = pick_provider(viewer.state, provider or None)
    values = {"name": name, "flavor": flavor, "image": image, "count": count, "networks": networks}
    errors: dict[str, str] = {}
    if not _NAME.match(name):
        errors["name"] = (
            "1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit"
        )
    if not flavor:
        errors["flavor"] = "choose a flavor"
    if not image:
        errors["image"] = "choose an image"
    if not count.isdigit() or not 1 <= int(count) <= MAX_CREATE:
        errors["count"] = f"a whole number from 1 to {MAX_CREATE}"
    network_ids = tuple(n.strip() for n in networks.split(",") if n.strip())
    created: list[Instance] = []
    if not errors:
        total = int(count)
        try:
            for index in range(total):
                plan = InstancePlan(
                    name=name if total == 1 else f"{name}-{index + 1}",
                    flavor=flavor,
                    image_id=image,
                    network_ids=network_ids,
                )
                created.append(chosen.create_instance(viewer.scope, plan))
        except ValidationError as exc:
            field = {"flavor": "flavor", "image_id": "image", "network_ids": "networks"}.get(
                exc.field.split("[")[0], exc.field
            )
            errors[field if field in values else "form"] = exc.message
        except StackyardError as exc:
            errors["form"] = str(exc)
    if errors:
        context = _create_context(viewer, chosen)
        context.update(errors=errors, values=values, created=created)
        return render(request, "instances/new.html", context, status_code=422)
    if len(created) == 1:
        return RedirectResponse(f"/ui/instances/{chosen.name}/{created[0].id}?done=created", status_code=303)
    query = urlencode({"provider": chosen.name, "name": f"^{re.escape(name)}-"})
    return RedirectResponse(f"/ui/instances?{query}", status_code=303)


@router.get("/ui/instances/{provider}/{instance_id}", response_class=HTMLResponse)
def instance_detail(
    request: Request, viewer: SignedIn, provider: str, instance_id: str, done: str | None = None
) -> HTMLResponse:
    chosen = pick_provider(viewer.state, provider)
    instance = chosen.get_instance(viewer.scope, instance_id)
    cost: AccruedCost | None = None
    cost_error = None
    try:
        cost = instance_cost(viewer.state, chosen, instance, None)
    except (NotFound, ValidationError) as exc:
        cost_error = str(exc)
    image_name = None
    if instance.image_id:
        image_name = next((i.name for i in chosen.images() if i.id == instance.image_id), None)
    return render(
        request,
        "instances/detail.html",
        {
            "nav": "instances",
            "provider": chosen,
            "instance": instance,
            "internal": [a for a in instance.addresses if a.kind is AddressKind.INTERNAL],
            "external": [a for a in instance.addresses if a.kind is AddressKind.EXTERNAL],
            "image_name": image_name,
            "cost": cost,
            "cost_error": cost_error,
            "done": {
                "created": "Creating the instance.",
                "start": "Start requested.",
                "stop": "Stop requested.",
                "reboot": "Reboot requested.",
            }.get(done or ""),
        },
    )


@router.get("/ui/instances/{provider}/{instance_id}/status", response_class=HTMLResponse)
def status_fragment(request: Request, viewer: SignedIn, provider: str, instance_id: str) -> HTMLResponse:
    chosen = pick_provider(viewer.state, provider)
    instance = chosen.get_instance(viewer.scope, instance_id)
    return render(request, "instances/status.html", {"instance": instance})


@router.get("/ui/instances/{provider}/{instance_id}/confirm", response_class=HTMLResponse)
def confirm_action(
    request: Request,
    viewer: SignedIn,
    provider: str,
    instance_id: str,
    action: Annotated[str, Query(pattern="^(start|stop|reboot|delete)$")],
) -> HTMLResponse:
    chosen = pick_provider(viewer.state, provider)
    instance = chosen.get_instance(viewer.scope, instance_id)
    return render(
        request,
        "instances/confirm.html",
        {"nav": "instances", "provider": chosen, "instance": instance, "action": action},
    )


@router.post("/ui/instances/{provider}/{instance_id}/actions")
def act(
    viewer: Acting,
    provider: str,
    instance_id: str,
    action: Annotated[str, Form(pattern="^(start|stop|reboot|delete)$")],
) -> Response:
    chosen = pick_provider(viewer.state, provider)
    if action == "delete":
        chosen.delete_instance(viewer.scope, instance_id)
        return RedirectResponse(f"/ui/instances?provider={chosen.name}&done=deleted", status_code=303)
    kind = InstanceAction(action)
    if kind is InstanceAction.START:
        chosen.start_instance(viewer.scope, instance_id)
    elif kind is InstanceAction.STOP:
        chosen.stop_instance(viewer.scope, instance_id)
    else:
        chosen.reboot_instance(viewer.scope, instance_id)
    return RedirectResponse(f"/ui/instances/{chosen.name}/{instance_id}?done={action}", status_code=303)
