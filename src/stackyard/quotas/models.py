"""Quota vocabulary and the arithmetic of enrollment quotas (pure: no framework, no I/O).

A student's desired quota is the baseline profile plus the profiles of their active courses, capped
per resource. A plan compares it with what the cloud has: raises are applied, cuts are applied as far
as current usage allows and the rest is recorded as pending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from stackyard.errors import ValidationError

UNLIMITED = -1  # OpenStack's "no limit"
# The largest limit Nova, Cinder and Neutron accept (their quota columns are 32-bit integers).
MAX_QUOTA_VALUE = 2**31 - 1


class Service(StrEnum):
    COMPUTE = "compute"
    BLOCK_STORAGE = "block_storage"
    NETWORK = "network"


class Resource(StrEnum):
    """Every managed quota, as `<service>.<key>`; the key is the name each service's API uses."""

    INSTANCES = "compute.instances"
    CORES = "compute.cores"
    RAM = "compute.ram"  # MiB
    KEY_PAIRS = "compute.key_pairs"
    SERVER_GROUPS = "compute.server_groups"
    VOLUMES = "block_storage.volumes"
    GIGABYTES = "block_storage.gigabytes"
    SNAPSHOTS = "block_storage.snapshots"
    BACKUPS = "block_storage.backups"
    NETWORKS = "network.network"
    SUBNETS = "network.subnet"
    PORTS = "network.port"
    ROUTERS = "network.router"
    FLOATING_IPS = "network.floatingip"
    SECURITY_GROUPS = "network.security_group"
    SECURITY_GROUP_RULES = "network.security_group_rule"

    @property
    def service(self) -> Service:
        return Service(self.value.split(".", 1)[0])

    @property
    def key(self) -> str:
        return self.value.split(".", 1)[1]

    @classmethod
    def of(cls, service: Service, key: str) -> Resource:
        return cls(f"{service.value}.{key}")


QuotaValues = Mapping[Resource, int]


class StudentStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    GRADUATED = "graduated"


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    DROPPED = "dropped"
    EXPIRED = "expired"


class AuditReason(StrEnum):
    REGISTER = "register"
    ENROLL = "enroll"
    DROP = "drop"
    EXPIRY = "expiry"
    RECONCILE = "reconcile"
    MANUAL = "manual"
    REMOVE = "remove"
    RECLAIM = "reclaim"


class ChangeAction(StrEnum):
    UNCHANGED = "unchanged"
    INCREASE = "increase"
    DECREASE = "decrease"
    PENDING = "pending"  # a cut that current usage blocks: the limit goes only down to the usage


class ProjectOutcome(StrEnum):
    UNCHANGED = "unchanged"
    UPDATED = "updated"
    PENDING = "pending"
    FAILED = "failed"


def parse_quota_values(document: object, field: str = "values") -> dict[Resource, int]:
    """`{compute: {instances: 2, cores: 4}, network: {port: 10}}` → values; errors name the field
    (`values.compute.cores`). Only non-negative integers; resources left out are not set."""
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ValidationError(field, "expected a mapping of service → {resource: integer}")
    values: dict[Resource, int] = {}
    for service_name, resources in document.items():
        try:
            service = Service(str(service_name))
        except ValueError:
            known = ", ".join(s.value for s in Service)
            raise ValidationError(
                f"{field}.{service_name}", f"unknown service; expected one of {known}"
            ) from None
        if not isinstance(resources, Mapping):
            raise ValidationError(f"{field}.{service_name}", "expected a mapping of resource → integer")
        for key, raw in resources.items():
            where = f"{field}.{service_name}.{key}"
            try:
                resource = Resource.of(service, str(key))
            except ValueError:
                known = ", ".join(r.key for r in Resource if r.service is service)
                raise ValidationError(where, f"unknown resource; expected one of {known}") from None
            values[resource] = parse_quota_value(raw, where)
    return values


def parse_quota_value(raw: object, field: str) -> int:
    if isinstance(raw, str):
        text = raw.strip()
        # str.isdigit() alone admits "²" and 5000-digit strings, which int() rejects with ValueError
        if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_QUOTA_VALUE))):
            raise ValidationError(field, f"expected a non-negative integer, got {raw!r}")
        raw = int(text)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValidationError(field, f"expected a non-negative integer, got {raw!r}")
    if raw < 0:
        raise ValidationError(field, f"must not be negative, got {raw}")
    if raw > MAX_QUOTA_VALUE:
        raise ValidationError(field, f"must be at most {MAX_QUOTA_VALUE}, got {raw}")
    return raw


def quota_document(values: QuotaValues) -> dict[str, dict[str, int]]:
    """The nested form of `values` (the inverse of `parse_quota_values`), services in catalogue order."""
    document: dict[str, dict[str, int]] = {}
    for resource in Resource:
        if resource in values:
            document.setdefault(resource.service.value, {})[resource.key] = values[resource]
    return document


def desired_quota(
    baseline: QuotaValues, profiles: Iterable[QuotaValues], caps: QuotaValues | None = None
) -> dict[Resource, int]:
    """baseline + Σ profiles for every resource in the catalogue (absent counts 0), each capped."""
    totals = {resource: baseline.get(resource, 0) for resource in Resource}
    for profile in profiles:
        for resource, value in profile.items():
            totals[resource] += value
    if caps:
        for resource, cap in caps.items():
            totals[resource] = min(totals[resource], cap)
    return totals


def zero_quota() -> dict[Resource, int]:
    """What a student who may hold nothing gets (suspended, graduated or removed)."""
    return dict.fromkeys(Resource, 0)


@dataclass(frozen=True)
class ResourceChange:
    """One resource of a plan: `target` is what will be written (equal to `current` when unchanged)."""

    resource: Resource
    current: int  # the cloud's limit now; UNLIMITED for none
    desired: int
    target: int
    in_use: int | None  # known when the resource is being cut
    action: ChangeAction


@dataclass(frozen=True)
class QuotaPlan:
    changes: tuple[ResourceChange, ...]

    @property
    def writes(self) -> dict[Service, dict[Resource, int]]:
        """The values to write, per service; services with nothing to change are left out."""
        out: dict[Service, dict[Resource, int]] = {}
        for change in self.changes:
            if change.target != change.current:
                out.setdefault(change.resource.service, {})[change.resource] = change.target
        return out

    @property
    def pending(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.action is ChangeAction.PENDING)

    @property
    def is_noop(self) -> bool:
        return not self.writes

    @property
    def outcome(self) -> ProjectOutcome:
        if self.pending:
            return ProjectOutcome.PENDING
        return ProjectOutcome.UNCHANGED if self.is_noop else ProjectOutcome.UPDATED


def _is_cut(current: int, desired: int) -> bool:
    return current == UNLIMITED or desired < current


def services_needing_usage(current: QuotaValues, desired: QuotaValues) -> set[Service]:
    """Services where some limit goes down: only those need a usage read before planning."""
    return {r.service for r, value in desired.items() if _is_cut(current.get(r, UNLIMITED), value)}


def plan_quota(current: QuotaValues, desired: QuotaValues, in_use: QuotaValues | None = None) -> QuotaPlan:
    """Compare the cloud's limits with the desired ones.

    A cut never goes below what the project uses: the limit is lowered to the usage and the cut is
    PENDING until usage falls. A cut whose usage is unknown (not in `in_use`) is planned as PENDING
    with the limit left where it is, so a missing read can never force a cut.
    """
    usage = in_use or {}
    changes: list[ResourceChange] = []
    for resource in Resource:
        if resource not in desired:
            continue
        want = desired[resource]
        have = current.get(resource, UNLIMITED)
        used = usage.get(resource)
        if want == have:
            changes.append(ResourceChange(resource, have, want, have, used, ChangeAction.UNCHANGED))
        elif not _is_cut(have, want):
            changes.append(ResourceChange(resource, have, want, want, used, ChangeAction.INCREASE))
        elif used is None:
            changes.append(ResourceChange(resource, have, want, have, None, ChangeAction.PENDING))
        elif used <= want:
            changes.append(ResourceChange(resource, have, want, want, used, ChangeAction.DECREASE))
        else:
            target = used if have == UNLIMITED else min(used, have)
            changes.append(ResourceChange(resource, have, want, target, used, ChangeAction.PENDING))
    return QuotaPlan(tuple(changes))


def drifted(current: QuotaValues, last_applied: QuotaValues) -> dict[Resource, tuple[int, int]]:
    """Resources whose cloud limit differs from what stackyard last wrote: resource → (written, now)."""
    return {
        r: (value, current.get(r, UNLIMITED))
        for r, value in last_applied.items()
        if current.get(r, UNLIMITED) != value
    }
