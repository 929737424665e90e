"""Project quotas of Nova, Cinder and Neutron: one read or one write per service, by the APIs' own keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from keystoneauth1.adapter import Adapter
from openstack import exceptions as sdk_exc
from requests import Response

from stackyard.cloud.session import CloudSession

__all__ = ["QuotaGateway", "QuotaReading", "QuotaService", "QuotaWrite"]


class QuotaService(StrEnum):
    COMPUTE = "compute"
    BLOCK_STORAGE = "block_storage"
    NETWORK = "network"


@dataclass(frozen=True)
class QuotaWrite:
    limits: dict[str, int]  # what the service answered with
    request_id: str | None  # the service's request id, for the audit log


@dataclass(frozen=True)
class QuotaReading:
    limits: dict[str, int]  # -1 = unlimited
    in_use: dict[str, int] | None  # None unless usage was asked for


def _checked(response: Response) -> dict[str, object]:
    # NOTE: the SDK's proxies return the response of a raw request whatever its status; raise the
    # SDK's own exception so the error map translates it like every other call.
    sdk_exc.raise_from_response(response)
    body = response.json()
    if not isinstance(body, dict):
        raise sdk_exc.SDKException(f"unexpected quota body from {response.url}")
    return body


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _reading(section: object, *, used_key: str) -> QuotaReading:
    """`{key: n}` (limits only) or `{key: {"limit": n, used_key: m, ...}}` (with usage)."""
    limits: dict[str, int] = {}
    in_use: dict[str, int] = {}
    detailed = False
    for key, value in (section if isinstance(section, dict) else {}).items():
        if isinstance(value, dict):
            detailed = True
            limit, used = _int(value.get("limit")), _int(value.get(used_key))
            if limit is not None:
                limits[str(key)] = limit
            if used is not None:
                in_use[str(key)] = used
        elif (number := _int(value)) is not None:
            limits[str(key)] = number
    return QuotaReading(limits, in_use if detailed else None)


class QuotaGateway:
    """Quota reads and writes for any project (the session needs admin rights for projects not its own)."""

    def __init__(self, session: CloudSession) -> None:
        self._session = session
        self._conn = session.conn

    def _adapter(self, service: QuotaService) -> Adapter:
        proxies: dict[QuotaService, Adapter] = {
            QuotaService.COMPUTE: self._conn.compute,
            QuotaService.BLOCK_STORAGE: self._conn.block_storage,
            QuotaService.NETWORK: self._conn.network,
        }
        return proxies[service]

    @staticmethod
    def _path(service: QuotaService, project_id: str, *, usage: bool) -> str:
        # The id goes into a URL path: a "/", "?" or "#" in it must not change which URL is called.
        project_id = quote(project_id, safe="")
        if service is QuotaService.NETWORK:
            return f"/quotas/{project_id}/details" if usage else f"/quotas/{project_id}"
        if service is QuotaService.COMPUTE:
            return f"/os-quota-sets/{project_id}/detail" if usage else f"/os-quota-sets/{project_id}"
        # NOTE: Cinder's endpoint already carries the caller's project (/v3/{caller}); the project
        # whose quotas are read is the one in the path after os-quota-sets.
        return f"/os-quota-sets/{project_id}?usage=True" if usage else f"/os-quota-sets/{project_id}"

    def read(self, service: QuotaService, project_id: str, *, usage: bool = False) -> QuotaReading:
        adapter = self._adapter(service)
        path = self._path(service, project_id, usage=usage)
        body = self._session.call(service.value, "read quota", lambda: _checked(adapter.get(path)))
        section = body.get("quota" if service is QuotaService.NETWORK else "quota_set")
        # Neutron calls usage "used", Nova and Cinder "in_use".
        return _reading(section, used_key="used" if service is QuotaService.NETWORK else "in_use")

    def write(self, service: QuotaService, project_id: str, values: Mapping[str, int]) -> QuotaWrite:
        """One PUT with only these keys (absolute values: repeating it is harmless).

        NOTE: Nova and Cinder refuse a limit below what the project uses (400); Neutron accepts it.
        The planner above never asks for one.
        """
        adapter = self._adapter(service)
        wrapper = "quota" if service is QuotaService.NETWORK else "quota_set"
        path = self._path(service, project_id, usage=False)

        def put() -> tuple[dict[str, object], str | None]:
            response = adapter.put(path, json={wrapper: dict(values)})
            body = _checked(response)
            request_id = response.headers.get("x-openstack-request-id") or response.headers.get(
                "x-compute-request-id"
            )
            return body, request_id

        body, request_id = self._session.call(service.value, "write quota", put, idempotent=True)
        return QuotaWrite(_reading(body.get(wrapper), used_key="used").limits, request_id)

    def network_limits_of_all_projects(self) -> dict[str, dict[str, int]]:
        """Neutron's limits of every project that has non-default ones, in one call (GET /v2.0/quotas)."""
        adapter = self._adapter(QuotaService.NETWORK)
        body = self._session.call("network", "list quotas", lambda: _checked(adapter.get("/quotas")))
        found: dict[str, dict[str, int]] = {}
        entries = body.get("quotas")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                project = entry.get("project_id") or entry.get("tenant_id")
                limits = _reading(entry, used_key="used").limits
                if isinstance(project, str):
                    found[project] = {k: v for k, v in limits.items()}
        return found

    def network_defaults(self) -> dict[str, int]:
        """The limits of a project Neutron holds nothing special for (absent from the bulk listing)."""
        adapter = self._adapter(QuotaService.NETWORK)
        project = str(self._conn.current_project_id)
        body = self._session.call(
            "network", "read default quota", lambda: _checked(adapter.get(f"/quotas/{project}/default"))
        )
        return _reading(body.get("quota"), used_key="used").limits
