"""A student's quota rows on the dashboard: desired, written, the cloud's limit and use, pending cuts."""

from __future__ import annotations

from datetime import UTC, datetime

from stackyard.quotas.entities import PendingCut
from stackyard.quotas.models import Resource, Service
from stackyard.web.quota_view import quota_services

SINCE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_rows_follow_the_catalogue_per_service_with_cloud_values_and_pending_reasons() -> None:
    desired = {Resource.INSTANCES: 2, Resource.RAM: 1024, Resource.NETWORKS: 1}
    applied = {Resource.INSTANCES: 3, Resource.RAM: 1024, Resource.NETWORKS: 1}
    cut = PendingCut(Resource.INSTANCES, desired=2, limit=3, in_use=3, since=SINCE, checked_at=SINCE)
    services = quota_services(
        desired,
        applied,
        {Service.COMPUTE: {"instances": 3, "ram": 2048}, Service.NETWORK: {"network": 1}},
        {Service.COMPUTE: {"instances": 3, "ram": 512}},
        [cut],
    )
    assert [s.service for s in services] == [Service.COMPUTE, Service.NETWORK]
    compute = services[0].rows
    assert [r.resource for r in compute] == [Resource.INSTANCES, Resource.RAM]
    instances, ram = compute
    assert (instances.desired, instances.applied, instances.limit, instances.in_use) == (2, 3, 3, 3)
    assert instances.pending == "held at 3: 3 in use, 2 wanted (since 2026-12-01 08:00 UTC)"
    assert ram.label == "ram (MiB)" and ram.is_drifted and not instances.is_drifted
    network = services[1].rows[0]
    assert network.in_use is None and network.label == "network"


def test_without_cloud_readings_only_what_stackyard_knows_is_shown() -> None:
    services = quota_services({Resource.CORES: 4}, None, None, None)
    (compute,) = services
    (row,) = compute.rows
    assert (row.desired, row.applied, row.limit, row.in_use, row.pending) == (4, None, None, None, None)
    assert not row.is_drifted
