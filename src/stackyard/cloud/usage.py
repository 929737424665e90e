"""Compute usage (Nova's os-simple-tenant-usage) per project, and finding the project to report on."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import cast

from keystoneauth1.identity.base import BaseIdentityPlugin
from openstack.compute.v2.usage import ServerUsage as SdkServerUsage
from openstack.compute.v2.usage import Usage as SdkUsage
from openstack.identity.v3._proxy import Proxy as IdentityProxy

from stackyard.cloud.parse import as_int, utc_time
from stackyard.cloud.session import CloudSession
from stackyard.cloud.status import OpenStackStatus
from stackyard.errors import NotFound, ValidationError

USAGE_PAGE_SIZE = 500
# NOTE: the usage API pages (limit/marker, `tenant_usage_links`) from compute microversion 2.40; an
# older API ignores both and returns every server at once.
_PAGING_MICROVERSION = (2, 40)


class UsageState(OpenStackStatus):
    """A server's vm_state as the usage API reports it; `terminated` for a deleted server."""

    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"
    TERMINATED = "terminated"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ServerUsage:
    """One server's use of compute over the requested period.

    `hours` is the time it existed inside the period (Nova counts from launch to deletion, whatever
    the power state); `disk_gib` is root plus ephemeral disk.
    """

    instance_id: str
    name: str
    flavor: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    hours: Decimal
    started_at: datetime | None
    ended_at: datetime | None
    state: UsageState


@dataclass(frozen=True)
class ProjectRef:
    id: str
    name: str


def _hours(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return Decimal(0)
    try:
        hours = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return hours if hours.is_finite() and hours > 0 else Decimal(0)


def _naive_utc(moment: datetime, field: str) -> datetime:
    # NOTE: Nova rejects an offset in `start`/`end` ("Invalid datetime string"); it takes naive UTC
    # (compute API reference, "Usage reports").
    if moment.tzinfo is None:
        raise ValidationError(field, "give a timezone-aware time (UTC), not a naive one")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _is_paged(microversion: object) -> bool:
    try:
        major, minor = (int(part) for part in str(microversion).split("."))
    except ValueError:
        return False
    return (major, minor) >= _PAGING_MICROVERSION


def _server_usage(raw: SdkServerUsage) -> ServerUsage:
    return ServerUsage(
        instance_id=str(raw.instance_id or ""),
        name=str(raw.name or ""),
        flavor=str(raw.flavor or ""),
        vcpus=as_int(raw.vcpus),
        ram_mib=as_int(raw.memory_mb),
        disk_gib=as_int(raw.local_gb),
        hours=_hours(raw.hours),
        started_at=utc_time(raw.started_at),
        ended_at=utc_time(raw.ended_at),
        state=UsageState.from_openstack(raw.state),
    )


class UsageGateway:
    """Usage reports of the cloud/region a session is connected to."""

    def __init__(self, session: CloudSession, page_size: int = USAGE_PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self._session = session
        self._conn = session.conn
        self._page_size = page_size

    @property
    def region(self) -> str | None:
        """The region the connection talks to (None when the cloud has a single unnamed one)."""
        return str(self._conn.config.region_name or "") or None

    def project_usage(self, project_id: str, start: datetime, end: datetime) -> list[ServerUsage]:
        """Every server that existed in [start, end) in the project, deleted ones included.

        Needs the usage API's policy: an admin for any project, a member for their own (Nova's
        default policy). Pages are fetched one at a time, each under the retry policy.
        """
        query_start, query_end = _naive_utc(start, "start"), _naive_utc(end, "end")
        if query_end <= query_start:
            raise ValidationError("end", "the period must end after it starts")

        def fetch(marker: str | None) -> SdkUsage:
            query: dict[str, object] = {"limit": self._page_size}
            if marker:
                query["marker"] = marker
            return self._conn.compute.get_usage(project_id, query_start, query_end, **query)

        usages: list[ServerUsage] = []
        seen: set[str] = set()
        marker: str | None = None
        while True:
            page = self._session.call("compute", "get project usage", functools.partial(fetch, marker))
            # NOTE: a project without servers in the period comes back as `"tenant_usage": {}`.
            batch = [_server_usage(u) for u in page.server_usages or []]
            fresh = [u for u in batch if u.instance_id not in seen]
            usages.extend(fresh)
            seen.update(u.instance_id for u in fresh)
            # A short page is the last; `seen` guards against an API that ignores the marker.
            if not fresh or len(batch) < self._page_size or not _is_paged(page.microversion):
                return usages
            marker = batch[-1].instance_id

    def find_project(self, name_or_id: str) -> ProjectRef:
        """A project by id or name. The caller's own project is known from the token (no identity
        call, so a non-admin can report on it); others are looked up in Keystone."""

        def current() -> ProjectRef | None:
            auth = cast(BaseIdentityPlugin, self._conn.session.auth)
            access = auth.get_access(self._conn.session)
            if name_or_id in (access.project_id, access.project_name):
                return ProjectRef(id=str(access.project_id), name=str(access.project_name or ""))
            return None

        mine = self._session.call("identity", "read token scope", current)
        if mine is not None:
            return mine
        identity = cast(IdentityProxy, self._conn.identity)
        try:
            found = self._session.call(
                "identity", "find project", lambda: identity.find_project(name_or_id, ignore_missing=False)
            )
        except NotFound:
            raise ValidationError(
                "project", f"no project named or with id {name_or_id!r} is visible"
            ) from None
        return ProjectRef(id=str(found.id), name=str(found.name or ""))
