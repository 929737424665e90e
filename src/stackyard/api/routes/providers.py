"""Providers and their catalogs: `/api/v1/providers`, regions, flavors, images."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import APIRouter, Query

from stackyard.api.deps import CurrentPrincipal, ProviderDep, State
from stackyard.api.schemas import (
    FlavorList,
    FlavorRead,
    ImageList,
    ImageRead,
    ProviderList,
    ProviderRead,
    RegionList,
    RegionRead,
)
from stackyard.errors import StackyardError
from stackyard.providers.base import Provider

router = APIRouter(prefix="/api/v1/providers", tags=["providers"])

RegionQuery = Annotated[str | None, Query(max_length=255, description="Region (default: the provider's).")]


def _describe(provider: Provider) -> ProviderRead:
    try:
        status = provider.status()
    except StackyardError as exc:
        return ProviderRead(
            name=provider.name,
            type=provider.type,
            cloud=provider.cloud,
            regions=[],
            reachable=False,
            auth_ok=False,
            message=str(exc),
        )
    regions: list[str] = []
    message = status.message
    if status.is_reachable and status.is_auth_ok:
        try:
            regions = [r.id for r in provider.regions()]
        except StackyardError as exc:
            message = f"regions: {exc}"
    return ProviderRead(
        name=provider.name,
        type=provider.type,
        cloud=provider.cloud,
        regions=regions,
        reachable=status.is_reachable,
        auth_ok=status.is_auth_ok,
        message=message,
    )


@router.get("", response_model=ProviderList)
def list_providers(state: State, _principal: CurrentPrincipal) -> ProviderList:
    """Every configured provider with its regions and whether it is reachable with working auth."""
    providers = [state.providers[name] for name in sorted(state.providers)]
    if not providers:
        return ProviderList(items=[])
    with ThreadPoolExecutor(max_workers=min(8, len(providers))) as pool:
        return ProviderList(items=list(pool.map(_describe, providers)))


@router.get("/{provider}/regions", response_model=RegionList)
def list_regions(provider: ProviderDep, _principal: CurrentPrincipal) -> RegionList:
    return RegionList(items=[RegionRead.of(r) for r in provider.regions()])


@router.get("/{provider}/flavors", response_model=FlavorList)
def list_flavors(
    provider: ProviderDep, _principal: CurrentPrincipal, region: RegionQuery = None
) -> FlavorList:
    return FlavorList(items=[FlavorRead.of(f) for f in provider.flavors(region)])


@router.get("/{provider}/images", response_model=ImageList)
def list_images(provider: ProviderDep, _principal: CurrentPrincipal, region: RegionQuery = None) -> ImageList:
    return ImageList(items=[ImageRead.of(i) for i in provider.images(region)])
