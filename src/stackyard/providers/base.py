"""The provider contract: what a provider type implements, and the values it takes and returns.

A provider type is a class registered under the entry point group `stackyard.providers`; it is built
as `ProviderType(name, options)` with the `options` mapping of its settings entry. Its methods take a
`Scope` (whose request it is) and return stackyard's own models, raising stackyard's errors
(NotFound, ValidationError, CloudError ...), so the API maps every provider's failures the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from stackyard.cloud.models import Flavor, Image, Instance, Region
from stackyard.cloud.status import ServerStatus
from stackyard.pricing.models import Estimate, PriceBook, UsageRecord

ENTRY_POINT_GROUP = "stackyard.providers"


@dataclass(frozen=True)
class Scope:
    """Whose request this is. `project_id` None means every project (an admin's view).

    `token` is the caller's own Keystone token when they authenticated with Keystone; a provider
    that can act with it does, so the cloud's own policy applies. It is a secret: never log it.
    `token_project_id` is the project that token is scoped to (an admin's too, whose `project_id`
    is None).
    """

    project_id: str | None
    is_admin: bool = False
    token: str | None = field(default=None, repr=False)
    token_project_id: str | None = None


class InstanceSort(StrEnum):
    """What an instance listing is ordered by."""

    CREATED = "created"
    NAME = "name"
    STATUS = "status"


@dataclass(frozen=True)
class InstanceQuery:
    region: str | None = None
    name: str | None = None
    status: ServerStatus | None = None
    tags: Sequence[str] = ()
    limit: int = 50
    marker: str | None = None
    # Done by the cloud, across pages (a marker continues in the same order); ties fall back to newest.
    sort: InstanceSort = field(default_factory=lambda: InstanceSort.CREATED)
    descending: bool = True


@dataclass(frozen=True)
class InstancePage:
    items: Sequence[Instance]
    next_marker: str | None  # None: this was the last page


@dataclass(frozen=True)
class InstancePlan:
    """An instance to create or to price: flavor and image as names or ids."""

    name: str
    flavor: str
    image_id: str | None = None
    region: str | None = None
    network_ids: Sequence[str] = ()
    key_name: str | None = None
    user_data: str | None = None
    tags: Sequence[str] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    volume_gib: int = 0
    floating_ips: int = 0


class InstanceAction(StrEnum):
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"


@dataclass(frozen=True)
class ProviderStatus:
    is_reachable: bool
    is_auth_ok: bool
    message: str | None = None


@runtime_checkable
class Provider(Protocol):
    """One configured provider instance (for OpenStack: one clouds.yaml cloud)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def cloud(self) -> str | None:
        """What it points at (a clouds.yaml cloud name, an endpoint), for display."""
        ...

    def status(self) -> ProviderStatus: ...

    def default_region(self) -> str | None:
        """The region used when a request names none."""
        ...

    def regions(self) -> list[Region]: ...

    def flavors(self, region: str | None = None) -> list[Flavor]: ...

    def images(self, region: str | None = None) -> list[Image]: ...

    def list_instances(self, scope: Scope, query: InstanceQuery) -> InstancePage: ...

    def get_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> Instance:
        """NotFound also when the instance belongs to a project outside the scope."""
        ...

    def create_instance(self, scope: Scope, plan: InstancePlan) -> Instance: ...

    def delete_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None: ...

    def start_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None: ...

    def stop_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None: ...

    def reboot_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None: ...

    def estimate_cost(self, plan: InstancePlan, book: PriceBook, count: int = 1) -> Estimate: ...

    def close(self) -> None: ...


@runtime_checkable
class UsageProvider(Protocol):
    """Optional: providers that can report a project's compute usage over a period (for cost reports)."""

    def project_usage(
        self, scope: Scope, project_id: str, start: datetime, end: datetime, region: str | None = None
    ) -> Sequence[UsageRecord]: ...
