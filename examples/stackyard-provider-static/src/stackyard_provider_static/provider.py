"""StaticProvider: instances kept in one JSON file, over fixed regions, flavors and images; no cloud."""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stackyard.cloud.models import (
    Address,
    AddressKind,
    Flavor,
    FlavorRef,
    Image,
    Instance,
    PowerState,
    Region,
)
from stackyard.cloud.status import ImageStatus, ServerStatus
from stackyard.errors import CloudError, ConfigError, Conflict, NotFound, ValidationError
from stackyard.pricing.models import Estimate, InstanceSize, PriceBook, estimate_instance
from stackyard.providers.base import (
    InstanceAction,
    InstancePage,
    InstancePlan,
    InstanceQuery,
    ProviderStatus,
    Scope,
)

from stackyard_provider_static.state import SERVICE, FlavorRecord, InstanceRecord, State, StateFile

TYPE = "static"  # the entry point name this package registers the class under
DEFAULT_PROJECT = "static"  # the project of instances created by a scope without one (an admin's)
NETWORK = "static-net"
_FIRST_ADDRESS = ipaddress.IPv4Address("10.0.0.2")
# Flavor and image ids are uuid5s of their names, so every process and every restart agrees on them.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "static.providers.stackyard")
_OPTIONS = frozenset({"state_file", "regions", "flavors", "images"})


@dataclass(frozen=True)
class FlavorSpec:
    vcpus: int
    ram_mib: int
    disk_gib: int


DEFAULT_REGIONS: tuple[str, ...] = ("static-1",)
DEFAULT_IMAGES: tuple[str, ...] = ("static-image",)
DEFAULT_FLAVORS: Mapping[str, FlavorSpec] = {
    "static.small": FlavorSpec(vcpus=1, ram_mib=512, disk_gib=1),
    "static.medium": FlavorSpec(vcpus=2, ram_mib=2048, disk_gib=10),
}

_POWER = {ServerStatus.ACTIVE: PowerState.RUNNING, ServerStatus.SHUTOFF: PowerState.SHUTDOWN}
# Which statuses each action is allowed from (as Nova: anything else is a conflict), and where it lands.
_TRANSITIONS: Mapping[InstanceAction, tuple[frozenset[ServerStatus], ServerStatus]] = {
    InstanceAction.START: (frozenset({ServerStatus.SHUTOFF}), ServerStatus.ACTIVE),
    InstanceAction.STOP: (frozenset({ServerStatus.ACTIVE}), ServerStatus.SHUTOFF),
    InstanceAction.REBOOT: (frozenset({ServerStatus.ACTIVE, ServerStatus.SHUTOFF}), ServerStatus.ACTIVE),
}


class StaticProvider:
    """A provider with no cloud behind it: instances live in a JSON file and change state at once.

    Built by stackyard as `StaticProvider(name, options)` from a `providers.plugins` settings entry.
    Options: `state_file` (required; one file shared by every API worker), `regions` (names),
    `flavors` (name -> {vcpus, ram_mib, disk_gib}) and `images` (names).
    """

    def __init__(self, name: str, options: Mapping[str, object]) -> None:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise _option_error(name, unknown[0], f"unknown option; known: {', '.join(sorted(_OPTIONS))}")
        self._name = name
        self._state = StateFile(_state_file_option(name, options.get("state_file")))
        self._regions = _names_option(name, "regions", options.get("regions"), DEFAULT_REGIONS)
        self._flavors = [
            Flavor(
                id=str(uuid.uuid5(_ID_NAMESPACE, f"flavor:{flavor}")),
                name=flavor,
                vcpus=spec.vcpus,
                ram_mib=spec.ram_mib,
                disk_gib=spec.disk_gib,
                ephemeral_gib=0,
                swap_mib=0,
                is_public=True,
            )
            for flavor, spec in _flavors_option(name, options.get("flavors")).items()
        ]
        self._images = [
            Image(
                id=str(uuid.uuid5(_ID_NAMESPACE, f"image:{image}")),
                name=image,
                status=ImageStatus.ACTIVE,
                size=None,
                disk_format="raw",
                container_format="bare",
                visibility="public",
                checksum=None,
                hash_algo=None,
                hash_value=None,
                owner=None,
                created_at=None,
            )
            for image in _names_option(name, "images", options.get("images"), DEFAULT_IMAGES)
        ]

    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        return TYPE

    @property
    def cloud(self) -> str | None:
        return str(self._state.path)

    def status(self) -> ProviderStatus:
        directory = self._state.path.parent
        if not directory.is_dir():
            return _unreachable(f"state directory {directory} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            return _unreachable(f"state directory {directory} is not writable")
        try:
            self._state.read()
        except CloudError as exc:
            return _unreachable(str(exc))
        return ProviderStatus(is_reachable=True, is_auth_ok=True)

    def default_region(self) -> str | None:
        return self._regions[0]

    def regions(self) -> list[Region]:
        return [Region(id=region, services=["compute", "image"]) for region in self._regions]

    def flavors(self, region: str | None = None) -> list[Flavor]:
        self._region(region)
        return list(self._flavors)

    def images(self, region: str | None = None) -> list[Image]:
        self._region(region)
        return list(self._images)

    def list_instances(self, scope: Scope, query: InstanceQuery) -> InstancePage:
        if query.limit < 1:
            raise ValidationError("limit", "must be at least 1")
        if query.region is not None:
            self._region(query.region)
        records = sorted(
            (r for r in self._state.read()["instances"].values() if _is_visible(scope, r)),
            key=lambda r: r["seq"],
            reverse=True,  # newest first, as Nova lists
        )
        if query.marker is not None:
            # As Nova: the marker is looked up among everything the caller sees, not only what matches
            # the filters, so a page still follows after the marker's instance changed status.
            position = next((i for i, r in enumerate(records) if r["id"] == query.marker), None)
            if position is None:
                raise ValidationError("marker", f"no instance {query.marker!r} to page from")
            records = records[position + 1 :]
        matching = [r for r in records if _matches(r, query)]
        page = matching[: query.limit]
        next_marker = page[-1]["id"] if len(matching) > query.limit else None
        return InstancePage([self._instance(r) for r in page], next_marker)

    def get_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> Instance:
        self._region(region)
        return self._instance(self._find(self._state.read(), scope, instance_id, region))

    def create_instance(self, scope: Scope, plan: InstancePlan) -> Instance:
        if not plan.name.strip():
            raise ValidationError("name", "an instance needs a name")
        flavor = self._flavor(plan.flavor)
        image_id = self._image(plan.image_id).id if plan.image_id is not None else None
        region = self._region(plan.region)
        now = datetime.now(UTC).isoformat()
        with self._state.update() as state:
            record = InstanceRecord(
                id=str(uuid.uuid4()),
                seq=state["next_seq"],
                name=plan.name,
                region=region,
                project_id=scope.project_id or DEFAULT_PROJECT,
                status=ServerStatus.ACTIVE.value,
                flavor=FlavorRecord(
                    name=flavor.name, vcpus=flavor.vcpus, ram_mib=flavor.ram_mib, disk_gib=flavor.disk_gib
                ),
                image_id=image_id,
                key_name=plan.key_name,
                metadata=dict(plan.metadata),
                tags=list(plan.tags),
                created_at=now,
                updated_at=now,
            )
            state["next_seq"] += 1
            state["instances"][record["id"]] = record
        return self._instance(record)

    def delete_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        self._region(region)
        with self._state.update() as state:
            record = self._find(state, scope, instance_id, region)
            del state["instances"][record["id"]]

    def start_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        self._act(scope, instance_id, region, InstanceAction.START)

    def stop_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        self._act(scope, instance_id, region, InstanceAction.STOP)

    def reboot_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        self._act(scope, instance_id, region, InstanceAction.REBOOT)

    def estimate_cost(self, plan: InstancePlan, book: PriceBook, count: int = 1) -> Estimate:
        if count < 1:
            raise ValidationError("count", "must be at least 1")
        if plan.volume_gib < 0:
            raise ValidationError("volume_gib", "must not be negative")
        if plan.floating_ips < 0:
            raise ValidationError("floating_ips", "must not be negative")
        flavor = self._flavor(plan.flavor)
        region = self._region(plan.region)
        size = InstanceSize(
            flavor=flavor.name,
            vcpus=flavor.vcpus,
            ram_mib=flavor.ram_mib,
            disk_gib=flavor.disk_gib,
            volume_gib=plan.volume_gib,
            floating_ips=plan.floating_ips,
        )
        try:
            return estimate_instance(book, region, size, count)
        except LookupError as exc:
            raise ValidationError("region", str(exc)) from exc

    def close(self) -> None:
        """Nothing to release: every call opens and closes the files it needs."""

    # -- helpers ---------------------------------------------------------------------------------

    def _region(self, region: str | None) -> str:
        """The region to use: `region`, or the default one when None."""
        if region is None:
            return self._regions[0]
        if region not in self._regions:
            raise ValidationError("region", f"no region {region!r}; known: {', '.join(self._regions)}")
        return region

    def _flavor(self, wanted: str) -> Flavor:
        for flavor in self._flavors:
            if wanted in (flavor.name, flavor.id):
                return flavor
        known = ", ".join(f.name for f in self._flavors)
        raise ValidationError("type", f"no flavor {wanted!r}; known: {known}")

    def _image(self, wanted: str) -> Image:
        for image in self._images:
            if wanted in (image.id, image.name):
                return image
        raise ValidationError("image_id", f"no image {wanted!r}")

    def _find(self, state: State, scope: Scope, instance_id: str, region: str | None) -> InstanceRecord:
        """The instance the scope may see; NotFound for one of another project, as for a missing one."""
        record = state["instances"].get(instance_id)
        if record is None or not _is_visible(scope, record) or region not in (None, record["region"]):
            raise NotFound(f"static: no instance {instance_id!r}", service=SERVICE)
        return record

    def _act(self, scope: Scope, instance_id: str, region: str | None, action: InstanceAction) -> None:
        self._region(region)
        allowed, target = _TRANSITIONS[action]
        with self._state.update() as state:
            record = self._find(state, scope, instance_id, region)
            status = ServerStatus(record["status"])
            if status not in allowed:
                raise Conflict(
                    f"static: cannot {action.value} instance {instance_id!r} while it is {status.value}",
                    service=SERVICE,
                )
            record["status"] = target.value
            record["updated_at"] = datetime.now(UTC).isoformat()

    def _instance(self, record: InstanceRecord) -> Instance:
        try:
            status = ServerStatus(record["status"])
            flavor = record["flavor"]
            return Instance(
                id=record["id"],
                name=record["name"],
                status=status,
                power_state=_POWER.get(status, PowerState.NOSTATE),
                flavor=FlavorRef(
                    name=flavor["name"],
                    vcpus=flavor["vcpus"],
                    ram_mib=flavor["ram_mib"],
                    disk_gib=flavor["disk_gib"],
                ),
                image_id=record["image_id"],
                project_id=record["project_id"],
                host=None,
                created_at=datetime.fromisoformat(record["created_at"]),
                updated_at=datetime.fromisoformat(record["updated_at"]),
                key_name=record["key_name"],
                metadata=dict(record["metadata"]),
                tags=list(record["tags"]),
                addresses=[
                    Address(
                        network=NETWORK,
                        ip=str(_FIRST_ADDRESS + record["seq"]),
                        version=4,
                        kind=AddressKind.INTERNAL,
                    )
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._state.corrupt(f"instance record {record!r}: {exc!r}") from exc


def _unreachable(message: str) -> ProviderStatus:
    return ProviderStatus(is_reachable=False, is_auth_ok=False, message=message)


def _is_visible(scope: Scope, record: InstanceRecord) -> bool:
    return scope.project_id is None or record["project_id"] == scope.project_id


def _matches(record: InstanceRecord, query: InstanceQuery) -> bool:
    # NOTE: Nova's `name` filter is a regular expression searched in the name; a substring match is
    # what a plain name gives there, without letting a caller's pattern fail or run slow here.
    return (
        (query.region is None or record["region"] == query.region)
        and (query.name is None or query.name in record["name"])
        and (query.status is None or record["status"] == query.status.value)
        and all(tag in record["tags"] for tag in query.tags)  # Nova's `tags`: every one of them
    )


def _option_error(provider: str, option: str, message: str) -> ConfigError:
    return ConfigError(f"static provider {provider!r}: options.{option}: {message}")


def _state_file_option(provider: str, value: object) -> Path:
    if isinstance(value, Path) or (isinstance(value, str) and value):
        # Absolute now, so workers started from other directories still share one file.
        return Path(value).expanduser().absolute()
    raise _option_error(
        provider, "state_file", "required: the path of the JSON file that holds the instances"
    )


def _names_option(provider: str, option: str, value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v for v in value)
        or len(set(value)) != len(value)
    ):
        raise _option_error(provider, option, "expected a non-empty list of distinct names")
    return tuple(value)


def _flavors_option(provider: str, value: object) -> Mapping[str, FlavorSpec]:
    if value is None:
        return DEFAULT_FLAVORS
    if not isinstance(value, Mapping) or not value:
        raise _option_error(
            provider, "flavors", "expected a mapping of flavor name to {vcpus, ram_mib, disk_gib}"
        )
    flavors: dict[str, FlavorSpec] = {}
    for flavor, spec in value.items():
        where = f"flavors.{flavor}"
        if not isinstance(flavor, str) or not flavor:
            raise _option_error(provider, "flavors", "flavor names must be non-empty strings")
        if not isinstance(spec, Mapping) or set(spec) != {"vcpus", "ram_mib", "disk_gib"}:
            raise _option_error(provider, where, "expected exactly vcpus, ram_mib and disk_gib")
        flavors[flavor] = FlavorSpec(
            vcpus=_size_option(provider, f"{where}.vcpus", spec["vcpus"], minimum=1),
            ram_mib=_size_option(provider, f"{where}.ram_mib", spec["ram_mib"], minimum=1),
            disk_gib=_size_option(provider, f"{where}.disk_gib", spec["disk_gib"], minimum=0),
        )
    return flavors


def _size_option(provider: str, option: str, value: object, *, minimum: int) -> int:
    # bool is an int to Python, but `vcpus: true` is a typo, not a size.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _option_error(provider, option, f"expected an integer >= {minimum}")
    return value
