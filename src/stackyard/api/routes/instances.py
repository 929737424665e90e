"""Instances of a provider: list (filters, cursor pages), get, create, delete, status, actions, cost."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from stackyard.api.deps import CurrentScope, Pricing, ProviderDep, State
from stackyard.api.schemas import (
    AcceptedRead,
    InstanceActionCreate,
    InstanceCostRead,
    InstanceCreate,
    InstancePageRead,
    InstanceRead,
    InstanceStatusRead,
)
from stackyard.cloud.models import Instance
from stackyard.cloud.status import ServerStatus
from stackyard.errors import ValidationError
from stackyard.pricing.models import AccruedCost, InstanceSize
from stackyard.pricing.service import PricingService
from stackyard.providers.base import InstanceAction, InstancePlan, InstanceQuery, Provider

router = APIRouter(prefix="/api/v1/providers/{provider}/instances", tags=["instances"])

InstanceId = Annotated[str, Path(min_length=1, max_length=255, description="Instance id.")]
RegionQuery = Annotated[str | None, Query(max_length=255, description="Region (default: the provider's).")]


@router.get("", response_model=InstancePageRead)
def list_instances(
    request: Request,
    provider: ProviderDep,
    scope: CurrentScope,
    region: RegionQuery = None,
    name: Annotated[str | None, Query(max_length=255, description="Name (a regular expression).")] = None,
    status: Annotated[ServerStatus | None, Query(description="Only instances in this status.")] = None,
    tags: Annotated[
        str | None, Query(max_length=1000, description="Comma-separated; all must match.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    marker: Annotated[str | None, Query(max_length=255, description="Id of the last item seen.")] = None,
) -> InstancePageRead:
    """A page of instances, newest first; follow `next` for the following page."""
    query = InstanceQuery(
        region=region,
        name=name,
        status=status,
        tags=tuple(t for t in (tags or "").split(",") if t),
        limit=limit,
        marker=marker,
    )
    page = provider.list_instances(scope, query)
    shown_region = region or provider.default_region()
    next_url = None
    if page.next_marker is not None:
        next_url = str(request.url.include_query_params(marker=page.next_marker, limit=limit))
    return InstancePageRead(items=[InstanceRead.of(i, shown_region) for i in page.items], next=next_url)


@router.post("", response_model=InstanceRead, status_code=202)
def create_instance(
    request: Request, response: Response, provider: ProviderDep, scope: CurrentScope, body: InstanceCreate
) -> InstanceRead:
    """Start building an instance; poll `GET .../{id}/status` until it is ACTIVE."""
    plan = InstancePlan(
        name=body.name,
        flavor=body.type,
        image_id=body.image_id,
        region=body.region,
        network_ids=tuple(body.network_ids),
        key_name=body.key_name,
        user_data=body.user_data,
        tags=tuple(body.tags),
        metadata=dict(body.metadata),
    )
    instance = provider.create_instance(scope, plan)
    response.headers["Location"] = str(
        request.url_for("get_instance", provider=provider.name, instance_id=instance.id).path
    )
    return InstanceRead.of(instance, body.region or provider.default_region())


@router.get("/{instance_id}", response_model=InstanceRead)
def get_instance(
    provider: ProviderDep, scope: CurrentScope, instance_id: InstanceId, region: RegionQuery = None
) -> InstanceRead:
    return InstanceRead.of(
        provider.get_instance(scope, instance_id, region), region or provider.default_region()
    )


@router.delete("/{instance_id}", response_model=AcceptedRead, status_code=202)
def delete_instance(
    provider: ProviderDep, scope: CurrentScope, instance_id: InstanceId, region: RegionQuery = None
) -> AcceptedRead:
    """Start deleting; the instance disappears from listings once the cloud has removed it."""
    provider.delete_instance(scope, instance_id, region)
    return AcceptedRead(id=instance_id, action="delete")


@router.get("/{instance_id}/status", response_model=InstanceStatusRead)
def get_instance_status(
    provider: ProviderDep, scope: CurrentScope, instance_id: InstanceId, region: RegionQuery = None
) -> InstanceStatusRead:
    return InstanceStatusRead.of(provider.get_instance(scope, instance_id, region))


@router.post("/{instance_id}/actions", response_model=AcceptedRead, status_code=202)
def act_on_instance(
    provider: ProviderDep,
    scope: CurrentScope,
    instance_id: InstanceId,
    body: InstanceActionCreate,
    region: RegionQuery = None,
) -> AcceptedRead:
    """`start`, `stop` or `reboot`; idempotent (starting a running instance is accepted)."""
    action = InstanceAction(body.action)
    if action is InstanceAction.START:
        provider.start_instance(scope, instance_id, region)
    elif action is InstanceAction.STOP:
        provider.stop_instance(scope, instance_id, region)
    else:
        provider.reboot_instance(scope, instance_id, region)
    return AcceptedRead(id=instance_id, action=action.value)


@router.get("/{instance_id}/cost", response_model=InstanceCostRead)
def get_instance_cost(
    state: State,
    provider: ProviderDep,
    scope: CurrentScope,
    pricing: Pricing,
    instance_id: InstanceId,
    region: RegionQuery = None,
) -> InstanceCostRead:
    """Accrued since creation at the current price book, and the monthly projection."""
    instance = provider.get_instance(scope, instance_id, region)
    cost = accrued_cost(pricing, provider, instance, region, state.clock.now())
    assert instance.created_at is not None  # accrued_cost refuses an instance without one
    return InstanceCostRead(
        instance_id=instance.id,
        currency=cost.currency,
        price_book_version=cost.price_book_version,
        created_at=instance.created_at,
        hours=str(cost.hours),
        hourly=str(cost.hourly),
        accrued=str(cost.accrued),
        monthly_projection=str(cost.monthly),
    )


def accrued_cost(
    pricing: PricingService, provider: Provider, instance: Instance, region: str | None, now: datetime
) -> AccruedCost:
    """What an instance has cost since its creation at the current price book (the API's and the
    dashboard's figure)."""
    if instance.created_at is None:
        raise ValidationError("instance_id", "the cloud reports no creation time for this instance")
    size = InstanceSize(
        flavor=instance.flavor.name,
        vcpus=instance.flavor.vcpus,
        ram_mib=instance.flavor.ram_mib,
        disk_gib=instance.flavor.disk_gib,
    )
    return pricing.instance_cost(region or provider.default_region(), size, instance.created_at, now)
