"""Request and response bodies of the REST API (pydantic), and their conversion from domain models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from stackyard.cloud.models import Flavor, Image, Instance, Region
from stackyard.cloud.status import ServerStatus
from stackyard.pricing.models import Estimate, LineItem

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=60, pattern=r"^[^,/]+$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Money = Annotated[str, Field(description="A decimal amount, as a string to keep its precision.")]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, object]
    request_id: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- providers -------------------------------------------------------------------------------------


class ProviderRead(BaseModel):
    name: str
    type: str
    cloud: str | None
    regions: list[str]
    reachable: bool
    auth_ok: bool
    message: str | None = None


class ProviderList(BaseModel):
    items: list[ProviderRead]


class RegionRead(BaseModel):
    id: str
    services: list[str]
    description: str

    @classmethod
    def of(cls, region: Region) -> RegionRead:
        return cls(id=region.id, services=list(region.services), description=region.description)


class FlavorRead(BaseModel):
    id: str
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    ephemeral_gib: int
    swap_mib: int
    is_public: bool

    @classmethod
    def of(cls, flavor: Flavor) -> FlavorRead:
        return cls(
            id=flavor.id,
            name=flavor.name,
            vcpus=flavor.vcpus,
            ram_mib=flavor.ram_mib,
            disk_gib=flavor.disk_gib,
            ephemeral_gib=flavor.ephemeral_gib,
            swap_mib=flavor.swap_mib,
            is_public=flavor.is_public,
        )


class ImageRead(BaseModel):
    id: str
    name: str
    status: str
    size: int | None
    disk_format: str | None
    visibility: str
    min_disk_gib: int
    min_ram_mib: int
    created_at: datetime | None

    @classmethod
    def of(cls, image: Image) -> ImageRead:
        return cls(
            id=image.id,
            name=image.name,
            status=image.status.value,
            size=image.size,
            disk_format=image.disk_format,
            visibility=image.visibility,
            min_disk_gib=image.min_disk_gib,
            min_ram_mib=image.min_ram_mib,
            created_at=image.created_at,
        )


class RegionList(BaseModel):
    items: list[RegionRead]


class FlavorList(BaseModel):
    items: list[FlavorRead]


class ImageList(BaseModel):
    items: list[ImageRead]


# -- instances -------------------------------------------------------------------------------------


class FlavorRefRead(BaseModel):
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int


class AddressRead(BaseModel):
    network: str
    ip: str
    version: int
    kind: Literal["internal", "external"]
    mac: str | None


class InstanceRead(BaseModel):
    id: str
    name: str
    region: str | None
    status: ServerStatus
    power_state: str
    flavor: FlavorRefRead
    image_id: str | None
    project_id: str
    key_name: str | None
    created_at: datetime | None
    updated_at: datetime | None
    tags: list[str]
    metadata: dict[str, str]
    addresses: list[AddressRead]
    internal_ips: list[str]
    external_ips: list[str]
    task_state: str | None
    fault: str | None

    @classmethod
    def of(cls, instance: Instance, region: str | None) -> InstanceRead:
        return cls(
            id=instance.id,
            name=instance.name,
            region=region,
            status=instance.status,
            power_state=instance.power_state.name.lower(),
            flavor=FlavorRefRead(
                name=instance.flavor.name,
                vcpus=instance.flavor.vcpus,
                ram_mib=instance.flavor.ram_mib,
                disk_gib=instance.flavor.disk_gib,
            ),
            image_id=instance.image_id,
            project_id=instance.project_id,
            key_name=instance.key_name,
            created_at=instance.created_at,
            updated_at=instance.updated_at,
            tags=list(instance.tags),
            metadata=dict(instance.metadata),
            addresses=[
                AddressRead(network=a.network, ip=a.ip, version=a.version, kind=a.kind.value, mac=a.mac)
                for a in instance.addresses
            ],
            internal_ips=instance.internal_ips,
            external_ips=instance.external_ips,
            task_state=instance.task_state,
            fault=instance.fault,
        )


class InstancePageRead(BaseModel):
    items: list[InstanceRead]
    next: str | None = Field(description="URL of the next page; null on the last page.")


class InstanceStatusRead(BaseModel):
    id: str
    status: ServerStatus
    power_state: str
    task_state: str | None
    progress: int | None
    fault: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, instance: Instance) -> InstanceStatusRead:
        return cls(
            id=instance.id,
            status=instance.status,
            power_state=instance.power_state.name.lower(),
            task_state=instance.task_state,
            progress=instance.progress,
            fault=instance.fault,
            updated_at=instance.updated_at,
        )


class InstanceCreate(BaseModel):
    """The cloud-portal style create body."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    type: Name = Field(description="Flavor name or id.")
    image_id: Id
    region: Name | None = None
    network_ids: list[Id] = Field(default_factory=list, max_length=16)
    key_name: Name | None = None
    user_data: str | None = Field(default=None, max_length=65535, description="Plain text (cloud-init).")
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    metadata: dict[Annotated[str, StringConstraints(min_length=1, max_length=255)], str] = Field(
        default_factory=dict, max_length=64
    )


class InstanceActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["start", "stop", "reboot"]


class AcceptedRead(BaseModel):
    id: str
    action: str
    accepted: bool = True


# -- cost ------------------------------------------------------------------------------------------


class LineItemRead(BaseModel):
    description: str
    unit: str
    quantity: Money
    unit_price: Money
    hourly: Money
    monthly: Money

    @classmethod
    def of(cls, item: LineItem) -> LineItemRead:
        return cls(
            description=item.description,
            unit=item.unit,
            quantity=str(item.quantity),
            unit_price=str(item.unit_price),
            hourly=str(item.hourly),
            monthly=str(item.monthly),
        )


class PlannedInstance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Name = Field(description="Flavor name or id.")
    region: Name | None = None
    count: int = Field(default=1, ge=1, le=10000)
    volume_gib: int = Field(default=0, ge=0, le=1_000_000)
    floating_ips: int = Field(default=0, ge=0, le=1000)
    name: Name | None = None


class EstimateCreate(BaseModel):
    """One planned instance, or `{"instances": [...]}` for several."""

    model_config = ConfigDict(extra="forbid")

    instances: list[PlannedInstance] = Field(min_length=1, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _single(cls, data: object) -> object:
        if isinstance(data, dict) and "instances" not in data and "type" in data:
            return {"instances": [data]}
        return data


class EstimateItemRead(BaseModel):
    type: str
    region: str | None
    count: int
    hourly: Money
    monthly: Money
    line_items: list[LineItemRead]

    @classmethod
    def of(cls, flavor: str, estimate: Estimate) -> EstimateItemRead:
        return cls(
            type=flavor,
            region=estimate.region,
            count=estimate.count,
            hourly=str(estimate.hourly),
            monthly=str(estimate.monthly),
            line_items=[LineItemRead.of(i) for i in estimate.line_items],
        )


class EstimateRead(BaseModel):
    currency: str
    price_book_version: int
    hourly: Money
    monthly: Money
    items: list[EstimateItemRead]

    @classmethod
    def of(cls, planned: list[tuple[str, Estimate]]) -> EstimateRead:
        first = planned[0][1]
        return cls(
            currency=first.currency,
            price_book_version=first.price_book_version,
            hourly=str(sum((e.hourly for _, e in planned), Decimal(0))),
            monthly=str(sum((e.monthly for _, e in planned), Decimal(0))),
            items=[EstimateItemRead.of(flavor, e) for flavor, e in planned],
        )


class InstanceCostRead(BaseModel):
    instance_id: str
    currency: str
    price_book_version: int
    created_at: datetime
    hours: Money
    hourly: Money
    accrued: Money
    monthly_projection: Money
