"""A student's quota as the dashboard shows it: desired vs written vs the cloud's limit and usage (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackyard.quotas.entities import PendingCut
from stackyard.quotas.models import Resource, Service

SERVICE_TITLES = {
    Service.COMPUTE: "Compute",
    Service.BLOCK_STORAGE: "Block storage",
    Service.NETWORK: "Network",
}
UNITS = {Resource.RAM: " MiB", Resource.GIGABYTES: " GiB"}


@dataclass(frozen=True)
class QuotaRow:
    resource: Resource
    desired: int | None
    applied: int | None  # what stackyard last wrote
    limit: int | None  # what the cloud has now (-1: unlimited); None when it was not read
    in_use: int | None
    pending: str | None  # why a cut has not landed yet

    @property
    def label(self) -> str:
        name = self.resource.key.replace("_", " ")
        unit = UNITS.get(self.resource)
        return f"{name} ({unit.strip()})" if unit else name

    @property
    def unit(self) -> str:
        return UNITS.get(self.resource, "")

    @property
    def is_drifted(self) -> bool:
        """The cloud's limit is not what stackyard wrote (and no cut explains it)."""
        return self.applied is not None and self.limit is not None and self.limit != self.applied


@dataclass(frozen=True)
class ServiceQuota:
    service: Service
    title: str
    rows: tuple[QuotaRow, ...]


def pending_reason(cut: PendingCut) -> str:
    return (
        f"held at {cut.limit}: {cut.in_use} in use, {cut.desired} wanted"
        f" (since {cut.since.strftime('%Y-%m-%d %H:%M UTC')})"
    )


def quota_services(
    desired: Mapping[Resource, int],
    applied: Mapping[Resource, int] | None,
    limits: Mapping[Service, Mapping[str, int]] | None,
    in_use: Mapping[Service, Mapping[str, int]] | None,
    pending: Sequence[PendingCut] = (),
    *,
    only: Sequence[Resource] | None = None,
) -> list[ServiceQuota]:
    """Rows per service for every resource that is desired, written or pending (or those in `only`)."""
    cuts = {cut.resource: cut for cut in pending}
    services: list[ServiceQuota] = []
    for service in Service:
        rows = []
        for resource in Resource:
            if resource.service is not service:
                continue
            shown = (
                resource in (only or ())
                if only is not None
                else (
                    resource in desired or (applied is not None and resource in applied) or resource in cuts
                )
            )
            if not shown:
                continue
            rows.append(
                QuotaRow(
                    resource=resource,
                    desired=desired.get(resource),
                    applied=applied.get(resource) if applied is not None else None,
                    limit=(limits or {}).get(service, {}).get(resource.key),
                    in_use=(in_use or {}).get(service, {}).get(resource.key),
                    pending=pending_reason(cuts[resource]) if resource in cuts else None,
                )
            )
        if rows:
            services.append(ServiceQuota(service, SERVICE_TITLES[service], tuple(rows)))
    return services
