"""20 servers created, stopped, started and deleted through a proxy that fails 30% of requests:
every operation succeeds and the cloud ends with exactly 20 created, none duplicated, none left."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import openstack
import openstack.connection
import pytest

from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.retry import RetryEvent, RetryPolicy
from stackyard.cloud.session import open_session
from stackyard.cloud.status import ServerStatus
from stackyard.compute.service import InstanceCreate, InstanceService
from stackyard.devcloud.access import Credentials
from stackyard.devcloud.launcher import Devcloud
from support.clouds import sdk_connection as direct
from support.faultproxy import FaultPlan, FaultProxy, RetryAfter, devcloud_upstreams

pytestmark = pytest.mark.devcloud

SERVERS = 20
CLIENT_TIMEOUT = 4.0
POLICY = RetryPolicy(attempts=10, initial=0.2, multiplier=2.0, cap=2.0, deadline=180.0, network_poll=0.5)


@pytest.fixture
def chaos_credentials(admin_credentials: Credentials, request: pytest.FixtureRequest) -> Credentials:
    """A project of its own with room for the 20 servers (the demo project's quota is 10)."""
    admin = direct(admin_credentials)
    request.addfinalizer(admin.close)
    name = f"chaos-{uuid.uuid4().hex[:6]}"
    project = admin.identity.create_project(name=name, domain_id="default")
    request.addfinalizer(lambda: admin.identity.delete_project(project, ignore_missing=True))
    password = uuid.uuid4().hex
    user = admin.identity.create_user(name=name, password=password, domain_id="default")
    request.addfinalizer(lambda: admin.identity.delete_user(user, ignore_missing=True))
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    admin.set_compute_quotas(project.id, instances=SERVERS * 2, cores=SERVERS * 2, ram=SERVERS * 2 * 512)
    admin.set_network_quotas(project.id, port=SERVERS * 3)

    def remove_servers() -> None:
        for server in admin.compute.servers(all_projects=True, project_id=project.id):
            admin.compute.delete_server(server, ignore_missing=True)

    request.addfinalizer(remove_servers)
    return Credentials(
        auth_url=admin_credentials.auth_url, username=name, password=password, project_name=name
    )


def test_twenty_servers_survive_a_flaky_cloud(devcloud: Devcloud, chaos_credentials: Credentials) -> None:
    demo_credentials = chaos_credentials
    prefix = f"chaos-{uuid.uuid4().hex[:6]}"
    plan = FaultPlan(
        error_503=0.10,
        too_many_429=0.08,
        reset=0.08,
        reset_after_forward=0.5,
        delay=0.04,
        delay_seconds=CLIENT_TIMEOUT * 2,
        retry_after=RetryAfter.SECONDS,
        spare_auth=False,
        max_consecutive=3,
        seed=20261122,
    )
    events: Counter[str] = Counter()
    lock = threading.Lock()

    def count(event: RetryEvent) -> None:
        with lock:
            events[event.kind.value] += 1

    checker = direct(demo_credentials)
    with FaultProxy(devcloud_upstreams(devcloud.ports), plan) as proxy:

        def proxied_service() -> InstanceService:
            """One connection per worker thread, through the proxy, with only stackyard's retries."""
            conn = openstack.connect(
                **proxy.clouds_entry(demo_credentials),
                load_yaml_config=False,
                load_envvars=False,
                connect_retries=0,
                status_code_retries=0,
                api_timeout=CLIENT_TIMEOUT,
            )
            return InstanceService(
                ComputeGateway(open_session(conn, name="chaos", policy=POLICY, on_event=count))
            )

        def lifecycle(index: int) -> str:
            service = proxied_service()
            created = service.create_instance(
                InstanceCreate(
                    name=f"{prefix}-{index:02d}", flavor="m1.tiny", image="devcloud-raw", networks=["private"]
                ),
                wait=True,
                timeout=180,
            )
            assert service.stop_instance(created.id, wait=True, timeout=120).status is ServerStatus.SHUTOFF
            assert service.start_instance(created.id, wait=True, timeout=120).status is ServerStatus.ACTIVE
            return created.id

        with ThreadPoolExecutor(max_workers=4) as pool:
            ids = list(pool.map(lifecycle, range(SERVERS)))

        # Before deleting: exactly one server per name, checked directly (not through the proxy).
        names = Counter(s.name for s in checker.compute.servers(name=f"^{prefix}-"))
        assert len(names) == SERVERS, names
        assert set(names.values()) == {1}, f"duplicates: {[n for n, c in names.items() if c > 1]}"
        assert len(set(ids)) == SERVERS

        def remove(server_id: str) -> bool:
            return proxied_service().delete_instance(server_id, wait=True, timeout=120)

        with ThreadPoolExecutor(max_workers=4) as pool:
            deleted = list(pool.map(remove, ids))
        injected = dict(proxy.counts)
        total = len(proxy.log)

    left = list(checker.compute.servers(name=f"^{prefix}-"))
    checker.close()
    print(f"requests through the proxy: {total}; faults injected: {injected}; retry events: {dict(events)}")
    assert left == []
    assert deleted.count(True) + deleted.count(False) == SERVERS
    assert sum(injected.values()) >= total * 0.2, "the plan should have faulted roughly 30% of requests"
    assert events["retrying"] > 0
