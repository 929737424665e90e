"""Event-driven inventory sync against the devcloud's RabbitMQ, with Neutron and Nova notifications on.

The loop polls only every 10 minutes here, so a sync within seconds of a change can only have come
from a notification. Checked: a port update on a watched VM and a port attached and detached through
Nova each give exactly one POST for that node and change its inventory row; a change elsewhere wakes
nothing; the dedicated queue carries its TTL, cap and expiry; with the broker away at start polling
goes on, and the watcher connects once it is back and reconnects after it drops.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import openstack.connection
import pytest
from kombu.connection import Connection
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.ports import PortGateway
from stackyard.cloud.session import CloudSession, open_session
from stackyard.devcloud.access import Credentials, notification_url
from stackyard.devcloud.launcher import Devcloud
from stackyard.inventory.loop import SyncLoop
from stackyard.inventory.models import PollIntervals
from stackyard.inventory.notifications import NotificationSettings, NotificationWatcher
from stackyard.inventory.push import Endpoint, NodeConfigPusher
from stackyard.inventory.service import InventoryService, NodeState, SyncRequest
from stackyard.inventory.watch import ScopeWatch, SyncTrigger, WatchedOutcome
from support.clouds import sdk_connection
from support.netlab import Lab
from support.postgres import migrated_database
from support.receiver import Receiver
from support.tcpproxy import TcpProxy

pytestmark = pytest.mark.devcloud

RUN = uuid.uuid4().hex[:6]
NODE_KEY = "k8s-node"
LONG = PollIntervals(fast=600, fast_window=1, slow=600, error=600)
EVENT_WAIT = 30.0  # seconds for a change to reach the receiver (Nova's attach takes a few)


@pytest.fixture(scope="module")
def sessions() -> Iterator[sessionmaker[Session]]:
    with migrated_database("stackyard_inventory_events") as (_url, made):
        yield made


@pytest.fixture(scope="module")
def lab(admin_conn: openstack.connection.Connection, request: pytest.FixtureRequest) -> Lab:
    return Lab(admin_conn, request, run=f"ev{RUN}", node_key=NODE_KEY)


@pytest.fixture(scope="module")
def cloud_session(admin_credentials: Credentials) -> Iterator[CloudSession]:
    session = open_session(sdk_connection(admin_credentials), name="devcloud")
    yield session
    session.close()


@pytest.fixture(scope="module")
def service(sessions: sessionmaker[Session], cloud_session: CloudSession) -> InventoryService:
    gateway = PortGateway(cloud_session)
    return InventoryService(sessions, lambda _cloud: gateway)


@pytest.fixture(scope="module")
def broker_url(devcloud: Devcloud) -> str:
    return notification_url(devcloud)


def delete_queue(url: str, name: str) -> None:
    with Connection(url, connect_timeout=5) as conn:
        conn.channel().queue_delete(name)


def settings_for(url: str, label: str, **changes: float) -> NotificationSettings:
    return NotificationSettings(
        url, queue=f"stackyard-inventory-test-{RUN}-{label}", message_ttl=60, queue_expires=120, **changes
    )


class Running:
    """A ScopeWatch in a thread, with what it did."""

    def __init__(self, watch: ScopeWatch) -> None:
        self.watch = watch
        self.outcomes: list[WatchedOutcome] = []
        self._changed = threading.Condition()
        watch.on_outcome = self._record
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=watch.run, args=(self._stopping,), daemon=True)

    def _record(self, outcome: WatchedOutcome) -> None:
        with self._changed:
            self.outcomes.append(outcome)
            self._changed.notify_all()

    def wait_for(self, check: Callable[[list[WatchedOutcome]], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: check(self.outcomes), timeout)

    def start(self) -> Running:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        assert not self._thread.is_alive()


@contextmanager
def watching(
    service: InventoryService,
    request: SyncRequest,
    receiver: Receiver,
    watcher: NotificationWatcher,
    intervals: PollIntervals = LONG,
) -> Iterator[Running]:
    pusher = NodeConfigPusher(Endpoint(receiver.url, timeout=5))
    loop = SyncLoop(lambda: service.sync(request, pusher), intervals)
    running = Running(ScopeWatch(request.scope, loop, request.instance_ids, watcher)).start()
    try:
        yield running
    finally:
        running.stop()
        pusher.close()


def request_for(lab: Lab, label: str, scope: str) -> SyncRequest:
    return SyncRequest(
        scope=scope,
        cloud="devcloud",
        project_id=lab.project_id,
        instance_ids=lab.vm_ids,
        subnet_id=str(lab.subnets[label].id),  # type: ignore[attr-defined]
        metadata_key=NODE_KEY,
    )


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def node(index: int) -> str:
    return "node-zero" if index == 0 else f"inv-ev{RUN}-{index}"


def test_the_queue_is_dedicated_with_a_message_ttl_a_cap_and_an_expiry(broker_url: str) -> None:
    settings = settings_for(broker_url, "queue")
    watcher = NotificationWatcher(settings)
    watcher.start()
    try:
        assert watcher.wait_connected(20), watcher.stats()
        with Connection(broker_url, connect_timeout=5) as conn:
            name, _messages, consumers = conn.channel().queue_declare(settings.queue, passive=True)
            assert (name, consumers) == (settings.queue, 1)
            arguments = {"x-message-ttl": 60000, "x-expires": 120000, "x-max-length": 10000}
            # Declaring a queue again with the same arguments succeeds; with another TTL RabbitMQ
            # refuses, naming the argument: the queue holds exactly these arguments.
            conn.channel().queue_declare(settings.queue, durable=True, auto_delete=False, arguments=arguments)
            with pytest.raises(conn.channel_errors) as info:
                conn.channel().queue_declare(
                    settings.queue,
                    durable=True,
                    auto_delete=False,
                    arguments={**arguments, "x-message-ttl": 1},
                )
            assert getattr(info.value, "code", None) == 406 and "x-message-ttl" in str(info.value)
    finally:
        watcher.stop()
        delete_queue(broker_url, settings.queue)


def test_a_port_update_on_a_watched_vm_is_pushed_within_seconds(
    lab: Lab, service: InventoryService, admin_conn: openstack.connection.Connection, broker_url: str
) -> None:
    settings = settings_for(broker_url, "update")
    watcher = NotificationWatcher(settings)
    watcher.start()
    request = request_for(lab, "b", f"ev-update-{RUN}")
    try:
        assert watcher.wait_connected(20), watcher.stats()
        with Receiver() as receiver, watching(service, request, receiver, watcher) as run:
            assert run.wait_for(lambda o: len(o) == 1, 60)
            assert sorted(receiver.nodes()) == sorted(node(i) for i in range(3))
            before = service.node_config(node(1))
            receiver.clear()

            # VM 1's port on subnet b moves to another address.
            port = lab.ports[(1, "b")]
            changed_at = time.monotonic()
            admin_conn.network.update_port(
                port.id,  # type: ignore[attr-defined]
                fixed_ips=[{"subnet_id": lab.subnets["b"].id, "ip_address": "10.78.0.240"}],  # type: ignore[attr-defined]
            )
            assert wait_until(lambda: receiver.nodes() == [node(1)], EVENT_WAIT), receiver.nodes()
            took = time.monotonic() - changed_at
            assert took < 10, f"the event-driven push took {took:.1f} s"
            time.sleep(2)  # nothing else follows
            assert receiver.nodes() == [node(1)]
            (body,) = receiver.received
            assert body["interfaces"][0]["address"] == "10.78.0.240"  # type: ignore[index]
            after = service.node_config(node(1))
            assert after.content_hash != before.content_hash and after.is_pushed
            assert after.payload["interfaces"][0]["address"] == "10.78.0.240"  # type: ignore[index]
            assert run.outcomes[-1].trigger is SyncTrigger.EVENT
            assert all(o.trigger is not SyncTrigger.POLL for o in run.outcomes)
    finally:
        watcher.stop()
        delete_queue(broker_url, settings.queue)


def test_a_port_attached_and_detached_through_nova_is_pushed_each_time(
    lab: Lab, service: InventoryService, admin_conn: openstack.connection.Connection, broker_url: str
) -> None:
    settings = settings_for(broker_url, "attach")
    watcher = NotificationWatcher(settings)
    watcher.start()
    request = request_for(lab, "a", f"ev-attach-{RUN}")
    subnet = lab.subnets["a"]
    extra = admin_conn.network.create_port(
        network_id=subnet.network_id,  # type: ignore[attr-defined]
        fixed_ips=[{"subnet_id": subnet.id}],  # type: ignore[attr-defined]
        name=f"inv-ev{RUN}-extra",
    )
    try:
        assert watcher.wait_connected(20), watcher.stats()
        with Receiver() as receiver, watching(service, request, receiver, watcher) as run:
            assert run.wait_for(lambda o: len(o) == 1, 60)
            assert len(receiver.received) == 3
            receiver.clear()
            server = lab.servers[2]

            admin_conn.compute.create_server_interface(server, port_id=extra.id)
            assert wait_until(lambda: receiver.nodes() == [node(2)], EVENT_WAIT), receiver.nodes()
            (body,) = receiver.received
            ids = sorted(i["id"] for i in body["interfaces"])  # type: ignore[attr-defined]
            assert ids == sorted([lab.ports[(2, "a")].id, extra.id])  # type: ignore[attr-defined]
            assert len(service.node_config(node(2)).payload["interfaces"]) == 2  # type: ignore[arg-type]
            time.sleep(3)  # Nova's attach end event follows Neutron's update: it finds nothing new
            assert receiver.nodes() == [node(2)]
            assert {o.trigger for o in run.outcomes[1:]} == {SyncTrigger.EVENT}

            receiver.clear()
            admin_conn.compute.delete_server_interface(extra.id, server=server)
            assert wait_until(lambda: receiver.nodes() == [node(2)], EVENT_WAIT), receiver.nodes()
            (body,) = receiver.received
            assert [i["id"] for i in body["interfaces"]] == [lab.ports[(2, "a")].id]  # type: ignore[attr-defined]
            assert len(service.node_config(node(2)).payload["interfaces"]) == 1  # type: ignore[arg-type]
            assert all(o.trigger is not SyncTrigger.POLL for o in run.outcomes)
    finally:
        watcher.stop()
        delete_queue(broker_url, settings.queue)
        admin_conn.network.delete_port(extra, ignore_missing=True)


def test_a_change_elsewhere_wakes_nothing(
    lab: Lab, service: InventoryService, admin_conn: openstack.connection.Connection, broker_url: str
) -> None:
    settings = settings_for(broker_url, "unrelated")
    watcher = NotificationWatcher(settings)
    watcher.start()
    request = request_for(lab, "b", f"ev-unrelated-{RUN}")
    subnet = lab.subnets["b"]
    try:
        assert watcher.wait_connected(20), watcher.stats()
        with Receiver() as receiver, watching(service, request, receiver, watcher) as run:
            assert run.wait_for(lambda o: len(o) == 1, 60)
            receiver.clear()
            received = watcher.stats().received
            # A port on the watched network that belongs to no watched VM, then an update of it.
            other = admin_conn.network.create_port(
                network_id=subnet.network_id,  # type: ignore[attr-defined]
                fixed_ips=[{"subnet_id": subnet.id}],  # type: ignore[attr-defined]
                device_id=str(uuid.uuid4()),
                name=f"inv-ev{RUN}-other",
            )
            try:
                admin_conn.network.update_port(other.id, name=f"inv-ev{RUN}-other-renamed")
                # The notifications did arrive (create and update, their .start too) ...
                assert wait_until(lambda: watcher.stats().received >= received + 2, EVENT_WAIT)
                time.sleep(2)
                # ... and woke no sync, so nothing was sent.
                assert len(run.outcomes) == 1 and receiver.attempts == 0
            finally:
                admin_conn.network.delete_port(other, ignore_missing=True)
    finally:
        watcher.stop()
        delete_queue(broker_url, settings.queue)


def test_with_the_broker_away_polling_goes_on_and_the_watcher_connects_when_it_is_back(
    lab: Lab, service: InventoryService, admin_conn: openstack.connection.Connection, broker_url: str
) -> None:
    broker = urlsplit(broker_url)
    assert broker.port is not None
    proxy = TcpProxy(broker.port)  # not started: nothing listens on its port yet
    proxied = broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.port}").geturl()
    settings = settings_for(proxied, "away", reconnect_initial=0.2, reconnect_max=1.0, heartbeat=4.0)
    watcher = NotificationWatcher(settings)
    watcher.start()
    request = request_for(lab, "b", f"ev-away-{RUN}")
    polling = PollIntervals(fast=3, fast_window=1, slow=3, error=3)
    try:
        with Receiver() as receiver, watching(service, request, receiver, watcher, polling) as run:
            # The broker is away: syncs still happen, on the polling interval.
            assert run.wait_for(lambda o: len(o) >= 3, 60)
            assert [o.trigger for o in run.outcomes[:3]] == [
                SyncTrigger.START,
                SyncTrigger.POLL,
                SyncTrigger.POLL,
            ]
            assert all(o.outcome.error is None for o in run.outcomes)
            assert len(receiver.received) == 3  # the first sync pushed every node
            stats = watcher.stats()
            assert stats.connects == 0 and stats.last_error is not None and not watcher.is_connected
            assert broker.password is not None and broker.password not in stats.last_error

            proxy.start()
            assert watcher.wait_connected(20), watcher.stats()
            assert_event_wakes(run, lab, admin_conn, "10.78.0.230")

            # The broker connection drops (a restart): the watcher reconnects and events flow again.
            proxy.stop()
            assert wait_until(lambda: not watcher.is_connected, 20)
            proxy.start()
            assert wait_until(lambda: watcher.stats().connects == 2, 30), watcher.stats()
            assert_event_wakes(run, lab, admin_conn, "10.78.0.231")
    finally:
        watcher.stop()
        proxy.stop()
        delete_queue(broker_url, settings.queue)


def assert_event_wakes(
    run: Running, lab: Lab, admin_conn: openstack.connection.Connection, address: str
) -> None:
    """A port update on a watched VM brings a sync woken by its event (polling may run too)."""
    seen = len(run.outcomes)
    admin_conn.network.update_port(
        lab.ports[(1, "b")].id,  # type: ignore[attr-defined]
        fixed_ips=[{"subnet_id": lab.subnets["b"].id, "ip_address": address}],  # type: ignore[attr-defined]
    )
    assert run.wait_for(lambda o: any(x.trigger is SyncTrigger.EVENT for x in o[seen:]), EVENT_WAIT)
    assert run.wait_for(
        lambda o: any(
            x.outcome.result is not None
            and any(n.node_name == node(1) and n.state is NodeState.PUSHED for n in x.outcome.result.nodes)
            for x in o[seen:]
        ),
        EVENT_WAIT,
    )
