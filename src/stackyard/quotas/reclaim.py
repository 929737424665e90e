"""Plan the reclamation of what a project holds beyond its quota, newest first (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

from stackyard.errors import ValidationError
from stackyard.quotas.models import Resource


class ReclaimAction(StrEnum):
    NOTIFY = "notify"
    STOP = "stop"
    SNAPSHOT = "snapshot"
    DELETE_SERVER = "delete_server"
    DELETE_VOLUME = "delete_volume"
    RELEASE_FLOATING_IP = "release_floating_ip"


@dataclass(frozen=True)
class ReclaimPolicy:
    """What reclamation does, in order: notify `notify_url` (a webhook), stop the servers chosen,
    snapshot them, delete them and the volumes and floating IPs chosen."""

    notify_url: str | None = None
    stop: bool = True
    snapshot: bool = False
    delete: bool = True


_FLAGS = ("stop", "snapshot", "delete")
_POLICY_KEYS = ("notify_url", *_FLAGS)


def parse_reclaim_policy(document: object, field: str = "reclamation") -> ReclaimPolicy:
    """`{notify_url: https://..., stop: true, snapshot: false, delete: true}` → a policy; keys left out
    keep their defaults, None is the default policy. Errors name the field (`reclamation.snapshot`)."""
    if document is None:
        return ReclaimPolicy()
    if not isinstance(document, Mapping):
        raise ValidationError(field, f"expected a mapping with {', '.join(_POLICY_KEYS)}")
    for key in document:
        if key not in _POLICY_KEYS:
            raise ValidationError(f"{field}.{key}", f"unknown key; known: {', '.join(_POLICY_KEYS)}")
    flags: dict[str, bool] = {}
    for key in _FLAGS:
        if key in document:
            value = document[key]
            if not isinstance(value, bool):
                raise ValidationError(f"{field}.{key}", f"expected true or false, got {value!r}")
            flags[key] = value
    url = document.get("notify_url")
    if url is not None:
        url = _notify_url(url, f"{field}.notify_url")
    return ReclaimPolicy(
        notify_url=url,
        stop=flags.get("stop", True),
        snapshot=flags.get("snapshot", False),
        delete=flags.get("delete", True),
    )


def _notify_url(value: object, field: str) -> str | None:
    if not isinstance(value, str):
        raise ValidationError(field, f"expected an http(s) URL, got {value!r}")
    url = value.strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        has_host = bool(parts.hostname)
        _ = parts.port  # raises ValueError on a port that is not a number in 0-65535
    except ValueError:
        raise ValidationError(field, f"{value!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not has_host or any(c.isspace() for c in url):
        raise ValidationError(
            field, f"expected an http(s) URL such as https://hooks.example.edu/x, got {value!r}"
        )
    return url


def reclaim_policy_document(policy: ReclaimPolicy) -> dict[str, object]:
    """The document form of `policy` (what parse_reclaim_policy reads back)."""
    return {
        "notify_url": policy.notify_url,
        "stop": policy.stop,
        "snapshot": policy.snapshot,
        "delete": policy.delete,
    }


@dataclass(frozen=True)
class OwnedServer:
    id: str
    name: str
    created_at: datetime | None
    vcpus: int
    ram_mib: int
    is_running: bool


@dataclass(frozen=True)
class OwnedVolume:
    id: str
    name: str
    created_at: datetime | None
    size_gib: int
    attached_to: tuple[str, ...]  # server ids


@dataclass(frozen=True)
class OwnedFloatingIp:
    id: str
    address: str
    created_at: datetime | None


@dataclass(frozen=True)
class ReclaimStep:
    action: ReclaimAction
    target_id: str  # "" for NOTIFY
    target_name: str
    reason: str  # the limit that forced it, e.g. "instances 3 > 1"


@dataclass(frozen=True)
class ReclaimPlan:
    steps: tuple[ReclaimStep, ...]
    notify_url: str | None = None  # where the NOTIFY step sends its notice; kept out of the steps

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def _targets(self, action: ReclaimAction) -> tuple[str, ...]:
        return tuple(s.target_id for s in self.steps if s.action is action)

    @property
    def servers(self) -> tuple[str, ...]:
        """Ids of the servers the plan acts on (deletes, else snapshots, else stops), newest first."""
        for action in (ReclaimAction.DELETE_SERVER, ReclaimAction.SNAPSHOT, ReclaimAction.STOP):
            if ids := self._targets(action):
                return ids
        return ()

    @property
    def volumes(self) -> tuple[str, ...]:
        """Ids of the volumes the plan deletes."""
        return self._targets(ReclaimAction.DELETE_VOLUME)

    @property
    def floating_ips(self) -> tuple[str, ...]:
        """Ids of the floating IPs the plan releases."""
        return self._targets(ReclaimAction.RELEASE_FLOATING_IP)


_OLDEST = datetime.min.replace(tzinfo=UTC)
_Item = TypeVar("_Item", OwnedServer, OwnedVolume, OwnedFloatingIp)
# One quota dimension of a kind of holding: the resource and how much of it one item uses.
_Measure = tuple[Resource, Callable[[_Item], int]]


def _newest_first(items: Sequence[_Item]) -> list[_Item]:
    """created_at descending (unknown counts as oldest, naive as UTC), ties by id descending."""

    def key(item: _Item) -> tuple[datetime, str]:
        at = item.created_at
        if at is None:
            return _OLDEST, item.id
        return (at.replace(tzinfo=UTC) if at.tzinfo is None else at), item.id

    return sorted(items, key=key, reverse=True)


def _choose(
    target: Mapping[Resource, int], candidates: Sequence[_Item], measures: Sequence[_Measure[_Item]]
) -> list[tuple[_Item, str]]:
    """Take items from the front of `candidates` until every measured resource fits its target;
    each with the reason: the limits it was over when it was taken. A negative target (UNLIMITED)
    or one left out of `target` is not a limit."""
    limits = [(r, measure, target[r]) for r, measure in measures if r in target and target[r] >= 0]
    totals = {r: sum(measure(item) for item in candidates) for r, measure, _ in limits}
    chosen: list[tuple[_Item, str]] = []
    for item in candidates:
        over = [f"{r.key} {totals[r]} > {limit}" for r, _, limit in limits if totals[r] > limit]
        if not over:
            break
        chosen.append((item, ", ".join(over)))
        for r, measure, _ in limits:
            totals[r] -= measure(item)
    return chosen


def _count(_item: object) -> int:
    return 1


def _volume_reason(volume: OwnedVolume, reason: str, removed: set[str]) -> str:
    staying = [server_id for server_id in volume.attached_to if server_id not in removed]
    if not staying:
        return reason
    return f"{reason}; attached to server(s) that stay: {', '.join(staying)}"


def plan_reclaim(
    target: Mapping[Resource, int],
    servers: Sequence[OwnedServer],
    volumes: Sequence[OwnedVolume],
    floating_ips: Sequence[OwnedFloatingIp],
    policy: ReclaimPolicy,
) -> ReclaimPlan:
    """What to stop, snapshot and delete so the project fits `target` (its desired quota).

    Servers, volumes and floating IPs are taken newest first until what is left fits: servers by
    instances, cores and RAM; volumes by count and gigabytes; floating IPs by count. Volumes attached
    to a server that stays are taken last, since Cinder refuses to delete an attached volume; those
    of removed servers first, as they go with them. Steps come in the order they must run: NOTIFY
    once, STOP (running servers), SNAPSHOT, then DELETE_SERVER, DELETE_VOLUME and
    RELEASE_FLOATING_IP. Without `policy.delete` the plan ends after stopping and snapshotting.
    """
    chosen_servers = _choose(
        target,
        _newest_first(servers),
        [
            (Resource.INSTANCES, _count),
            (Resource.CORES, lambda s: s.vcpus),
            (Resource.RAM, lambda s: s.ram_mib),
        ],
    )
    removed = {server.id for server, _ in chosen_servers}

    def volume_group(volume: OwnedVolume) -> int:
        if volume.attached_to and all(server_id in removed for server_id in volume.attached_to):
            return 0
        return 2 if volume.attached_to else 1

    ordered_volumes = sorted(_newest_first(volumes), key=volume_group)  # stable: newest first within
    chosen_volumes = _choose(
        target, ordered_volumes, [(Resource.VOLUMES, _count), (Resource.GIGABYTES, lambda v: v.size_gib)]
    )
    chosen_ips = _choose(target, _newest_first(floating_ips), [(Resource.FLOATING_IPS, _count)])

    steps: list[ReclaimStep] = []
    if policy.notify_url and (chosen_servers or chosen_volumes or chosen_ips):
        summary = (
            f"{len(chosen_servers)} server(s), {len(chosen_volumes)} volume(s) and"
            f" {len(chosen_ips)} floating IP(s) beyond the quota"
        )
        host = urlsplit(policy.notify_url).hostname or ""
        steps.append(ReclaimStep(ReclaimAction.NOTIFY, "", host, summary))
    if policy.stop:
        steps.extend(
            ReclaimStep(ReclaimAction.STOP, s.id, s.name, reason)
            for s, reason in chosen_servers
            if s.is_running
        )
    if policy.snapshot:
        steps.extend(
            ReclaimStep(ReclaimAction.SNAPSHOT, s.id, s.name, reason) for s, reason in chosen_servers
        )
    if policy.delete:
        steps.extend(
            ReclaimStep(ReclaimAction.DELETE_SERVER, s.id, s.name, reason) for s, reason in chosen_servers
        )
        steps.extend(
            ReclaimStep(ReclaimAction.DELETE_VOLUME, v.id, v.name, _volume_reason(v, reason, removed))
            for v, reason in chosen_volumes
        )
        steps.extend(
            ReclaimStep(ReclaimAction.RELEASE_FLOATING_IP, f.id, f.address, reason)
            for f, reason in chosen_ips
        )
    notifies = bool(steps) and steps[0].action is ReclaimAction.NOTIFY
    return ReclaimPlan(tuple(steps), policy.notify_url if notifies else None)
