"""`stackyard operator run` end to end: a real kube-apiserver, the devcloud, PostgreSQL and a receiver.

A Secret holding a clouds.yaml and an OpenstackConfig go in; the operator (a separate process, as in a
pod) syncs the lab's three VMs, the receiver gets one payload per node and the status turns Ready with
the nodes listed. Then: a spec change resyncs onto the other subnet, a spec the schema cannot refuse is
Degraded with a named reason, a missing Secret is reported and recovered from, an unknown cloud never
leaks the password, deleting the resource runs the finalizer that empties its inventory rows, and two
replicas of one peering hand the work over when the active one goes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack.connection
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stackyard.devcloud.access import Credentials, cloud_entry, notification_url
from stackyard.devcloud.launcher import Devcloud
from stackyard.inventory.orm import NodeConfigRecord
from support.api_server import stackyard_command
from support.kube import DEPLOY, KubeApiServer, apply_crd
from support.netlab import Lab
from support.postgres import migrated_database
from support.receiver import Receiver

pytestmark = pytest.mark.devcloud

RUN = uuid.uuid4().hex[:6]
NAMESPACE = f"e2e-{RUN}"
NODE_KEY = "k8s-node"
GROUP_PATH = f"/apis/stackyard.io/v1alpha1/namespaces/{NAMESPACE}/openstackconfigs"
WAIT = 120.0  # seconds for the operator to act on a change (it reacts within one or two seconds)


class OperatorProcess:
    """`stackyard operator run` in its own process; its log is shown when a wait times out."""

    def __init__(self, env: dict[str, str], log: Path, *extra: str) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*stackyard_command(), "operator", "run", *extra],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def tail(self, size: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-size:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def lab(admin_conn: openstack.connection.Connection, request: pytest.FixtureRequest) -> Lab:
    return Lab(admin_conn, request, run=RUN, node_key=NODE_KEY)


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, sessionmaker[Session]]]:
    with migrated_database("stackyard_operator") as made:
        yield made


@pytest.fixture(scope="module")
def http(kube: KubeApiServer) -> Iterator[httpx.Client]:
    with kube.client() as client:
        apply_crd(client)
        made = client.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
        assert made.status_code == 201, made.text
        yield client


@pytest.fixture(scope="module")
def cloud_secret(http: httpx.Client, admin_credentials: Credentials) -> str:
    """The Secret `cloud`: a clouds.yaml with the devcloud's admin as cloud `devcloud`."""
    _put_secret(http, "cloud", {"devcloud": cloud_entry(admin_credentials)})
    return "cloud"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def operator_env(
    kube: KubeApiServer, database: tuple[str, sessionmaker[Session]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    home = tmp_path_factory.mktemp("operator")
    (home / "stackyard.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKYARD_", "OS_", "KUBE"))}
    env.update(
        KUBECONFIG=str(kube.kubeconfig),
        STACKYARD_DATABASE_URL=database[0],
        STACKYARD_DATA_DIR=str(home),
        STACKYARD_CONFIG=str(home / "stackyard.yaml"),
        OS_CLIENT_CONFIG_FILE=str(home / "no-clouds.yaml"),  # the Secret is the only credential source
    )
    return env


@pytest.fixture(scope="module")
def operator(
    http: httpx.Client, operator_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    running = OperatorProcess(
        operator_env, tmp_path_factory.mktemp("logs") / "operator.log", "--namespace", NAMESPACE
    )
    yield running
    running.stop()


def _put_secret(http: httpx.Client, name: str, clouds: dict[str, object]) -> None:
    body = {
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": {"clouds.yaml": yaml.safe_dump({"clouds": clouds})},
    }
    made = http.post(f"/api/v1/namespaces/{NAMESPACE}/secrets", json=body)
    assert made.status_code == 201, made.text


def _config(name: str, lab: Lab, receiver: Receiver, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "credentialsSecretRef": {"name": "cloud", "key": "clouds.yaml"},
        "cloud": "devcloud",
        "projectId": lab.project_id,
        "vmIds": list(lab.vm_ids),
        "subnetId": str(lab.subnets["a"].id),  # type: ignore[attr-defined]
        "metadataKey": NODE_KEY,
        "target": {"url": receiver.url},
        "intervals": {"fast": 2, "fastWindow": 30, "slow": 60, "error": 2},
    }
    base.update(spec)
    return {
        "apiVersion": "stackyard.io/v1alpha1",
        "kind": "OpenstackConfig",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": base,
    }


def _wait_for(
    http: httpx.Client,
    name: str,
    operator: OperatorProcess,
    check: Callable[[dict[str, Any]], bool],
    what: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if operator.process.poll() is not None:
            pytest.fail(f"the operator exited with {operator.process.returncode}:\n{operator.tail()}")
        response = http.get(f"{GROUP_PATH}/{name}")
        if response.status_code == 200:
            body = response.json()
            if check(body):
                return body
        time.sleep(0.5)
    pytest.fail(f"{what} not seen within {WAIT:g}s; last object: {body}\noperator log:\n{operator.tail()}")


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in (body.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return {}


def _is(
    kind: str, reason: str | None = None, generation: int | None = None
) -> Callable[[dict[str, Any]], bool]:
    def check(body: dict[str, Any]) -> bool:
        found = _condition(body, kind)
        return (
            found.get("status") == "True"
            and (reason is None or found.get("reason") == reason)
            and (generation is None or found.get("observedGeneration") == generation)
        )

    return check


def _move_to_subnet_b(http: httpx.Client, name: str, lab: Lab) -> None:
    """Patch the resource's spec onto the lab's other subnet (a new generation)."""
    patched = http.patch(
        f"{GROUP_PATH}/{name}",
        json={"spec": {"subnetId": str(lab.subnets["b"].id)}},  # type: ignore[attr-defined]
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text


def _delete_and_wait(http: httpx.Client, name: str, operator: OperatorProcess) -> None:
    """Delete the resource and wait until the finalizer has let it go."""
    deleted = http.delete(f"{GROUP_PATH}/{name}")
    assert deleted.status_code == 200, deleted.text
    deadline = time.monotonic() + WAIT
    while http.get(f"{GROUP_PATH}/{name}").status_code != 404:
        assert time.monotonic() < deadline, f"the finalizer did not let go\n{operator.tail()}"
        time.sleep(0.5)


def _rows(sessions: sessionmaker[Session], scope: str) -> list[NodeConfigRecord]:
    with sessions() as session:
        return list(session.scalars(select(NodeConfigRecord).where(NodeConfigRecord.scope == scope)))


def test_a_config_syncs_resyncs_on_change_and_its_finalizer_empties_the_inventory(
    http: httpx.Client,
    cloud_secret: str,
    lab: Lab,
    receiver: Receiver,
    operator: OperatorProcess,
    admin_credentials: Credentials,
    database: tuple[str, sessionmaker[Session]],
) -> None:
    receiver.clear()
    created = http.post(GROUP_PATH, json=_config("nics", lab, receiver))
    assert created.status_code == 201, created.text

    ready = _wait_for(http, "nics", operator, _is("Ready", "Synced", 1), "Ready for generation 1")
    nodes = {n["node"]: n for n in ready["status"]["nodes"]}
    expected = ["node-zero", f"inv-{RUN}-1", f"inv-{RUN}-2"]
    assert sorted(nodes) == sorted(expected)
    # "pushed" by the sync that did it, "unchanged" by the ones after it (every 2 s in the fast phase)
    assert {n["interfaces"] for n in nodes.values()} == {1}
    assert {n["state"] for n in nodes.values()} <= {"pushed", "unchanged"}
    assert _condition(ready, "Degraded")["status"] == "False"
    assert ready["status"]["lastSyncedAt"] and ready["metadata"]["finalizers"] == ["stackyard.io/inventory"]
    assert sorted(receiver.nodes()) == sorted(expected)
    for body in receiver.received:
        (interface,) = body["interfaces"]  # type: ignore[misc]
        assert interface["mtu"] == 1450 and interface["cidr"] == "10.77.0.0/24"
    _, sessions = database
    assert sorted(r.node_name for r in _rows(sessions, f"cr:{NAMESPACE}/nics")) == sorted(expected)

    # A spec change (the other subnet) resyncs at once: new payloads with that subnet's MTU.
    receiver.clear()
    _move_to_subnet_b(http, "nics", lab)
    _wait_for(http, "nics", operator, _is("Ready", "Synced", 2), "Ready for generation 2")
    assert sorted(receiver.nodes()) == sorted(expected)
    assert {body["interfaces"][0]["mtu"] for body in receiver.received} == {1400}  # type: ignore[index]

    # Delete: the finalizer removes the rows, then the API server lets the object go.
    _delete_and_wait(http, "nics", operator)
    assert _rows(sessions, f"cr:{NAMESPACE}/nics") == []


def test_what_cannot_sync_is_degraded_with_a_named_reason_and_recovers(
    http: httpx.Client,
    cloud_secret: str,
    lab: Lab,
    receiver: Receiver,
    operator: OperatorProcess,
    admin_credentials: Credentials,
) -> None:
    # What the schema can say, the API server refuses, naming the field.
    bad_uuid = _config("bad-vm", lab, receiver, vmIds=["not-a-uuid"])
    refused = http.post(GROUP_PATH, json=bad_uuid)
    assert refused.status_code == 422 and "spec.vmIds" in refused.text, refused.text
    # A blank subnet name passes the schema (minLength 1); the operator names the field.
    spec = _config("blank-subnet", lab, receiver, subnetName="  ")
    del spec["spec"]["subnetId"]
    assert http.post(GROUP_PATH, json=spec).status_code == 201
    invalid = _wait_for(http, "blank-subnet", operator, _is("Degraded", "InvalidSpec"), "InvalidSpec")
    assert "spec.subnetName" in _condition(invalid, "Degraded")["message"]
    assert _condition(invalid, "Ready")["status"] == "False"
    # A subnet name the cloud does not know: the cloud's answer is the reason.
    spec = _config("no-subnet", lab, receiver, subnetName=f"absent-{RUN}")
    del spec["spec"]["subnetId"]
    assert http.post(GROUP_PATH, json=spec).status_code == 201
    absent = _wait_for(http, "no-subnet", operator, _is("Degraded", "CloudNotFound"), "CloudNotFound")
    assert f"absent-{RUN}" in _condition(absent, "Degraded")["message"]

    # A Secret that does not exist yet: reported, then picked up once it is there.
    missing = _config(
        "late", lab, receiver, credentialsSecretRef={"name": "late-cloud", "key": "clouds.yaml"}
    )
    assert http.post(GROUP_PATH, json=missing).status_code == 201
    waiting = _wait_for(http, "late", operator, _is("Degraded", "SecretNotFound"), "SecretNotFound")
    assert "late-cloud" in _condition(waiting, "Degraded")["message"]
    _put_secret(http, "late-cloud", {"devcloud": cloud_entry(admin_credentials)})
    _wait_for(http, "late", operator, _is("Ready", "Synced"), "Ready once the Secret exists")

    # A cloud name the clouds.yaml lacks, in a Secret whose other cloud has a password: never echoed.
    _put_secret(http, "wrong-cloud", {"other": cloud_entry(admin_credentials)})
    unknown = _config(
        "unknown", lab, receiver, credentialsSecretRef={"name": "wrong-cloud", "key": "clouds.yaml"}
    )
    assert http.post(GROUP_PATH, json=unknown).status_code == 201
    bad = _wait_for(http, "unknown", operator, _is("Degraded", "CredentialsInvalid"), "CredentialsInvalid")
    message = _condition(bad, "Degraded")["message"]
    assert "devcloud" in message and admin_credentials.password not in str(bad)
    assert admin_credentials.password not in operator.log.read_text(errors="replace")

    for name in ("blank-subnet", "no-subnet", "late", "unknown"):
        assert http.delete(f"{GROUP_PATH}/{name}").status_code == 200


def test_a_port_change_wakes_the_operator_through_notifications_long_before_a_poll(
    http: httpx.Client,
    cloud_secret: str,
    lab: Lab,
    receiver: Receiver,
    operator: OperatorProcess,
    operator_env: dict[str, str],
    devcloud: Devcloud,
    admin_conn: openstack.connection.Connection,
    tmp_path: Path,
) -> None:
    operator.stop()  # this test's operator also consumes the devcloud's notifications
    broker = notification_url(devcloud)
    evented = OperatorProcess(
        {**operator_env, "STACKYARD_NOTIFICATIONS_URL": broker},
        tmp_path / "evented.log",
        "--namespace",
        NAMESPACE,
    )
    try:
        receiver.clear()
        # Ten minutes between polls: only a notification can explain a sync within seconds.
        quiet = {"fast": 600, "fastWindow": 1, "slow": 600, "error": 600}
        assert (
            http.post(GROUP_PATH, json=_config("evented", lab, receiver, intervals=quiet)).status_code == 201
        )
        _wait_for(http, "evented", evented, _is("Ready", "Synced", 1), "Ready with notifications on")
        assert len(receiver.received) == 3

        receiver.clear()
        port = lab.ports[(1, "a")]
        admin_conn.network.update_port(
            port.id,  # type: ignore[attr-defined]
            fixed_ips=[{"subnet_id": lab.subnets["a"].id, "ip_address": "10.77.0.240"}],  # type: ignore[attr-defined]
        )
        # Seconds when the machine is idle; a loaded one (a full CI run) has taken longer than 30 s.
        deadline = time.monotonic() + 120
        while not receiver.received:
            assert time.monotonic() < deadline, f"no push within 120 s of the port update\n{evented.tail()}"
            time.sleep(0.2)
        assert "syncing now" in evented.tail(50000)  # woken by the event, not by a poll (600 s)
        time.sleep(2)  # anything else the event caused would have arrived by now
        assert receiver.nodes() == [f"inv-{RUN}-1"]
        assert receiver.received[0]["interfaces"][0]["address"] == "10.77.0.240"  # type: ignore[index]
        log = evented.log.read_text(errors="replace")
        assert "on queue stackyard-inventory-operator-" in log
        password = broker.split("@", 1)[0].rsplit(":", 1)[1]
        assert password not in log

        _delete_and_wait(http, "evented", evented)
    finally:
        evented.stop()


def test_two_replicas_of_a_peering_hand_over_when_the_active_one_stops(
    http: httpx.Client,
    cloud_secret: str,
    lab: Lab,
    receiver: Receiver,
    operator: OperatorProcess,
    operator_env: dict[str, str],
    admin_credentials: Credentials,
    database: tuple[str, sessionmaker[Session]],
    tmp_path: Path,
) -> None:
    # The standalone operator of the other tests steps aside: only the peering's replicas act here.
    operator.stop()
    # As deploy/ runs it: cluster-wide replicas of the peering that deploy/peering.yaml makes.
    for doc in yaml.safe_load_all((DEPLOY / "peering.yaml").read_text()):
        if doc and doc["kind"] == "CustomResourceDefinition":
            apply_crd(http, doc)
    peering = f"p-{RUN}"
    made = http.post(
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        json={"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}},
    )
    assert made.status_code == 201, made.text
    # Replicas started at the same moment may both act for a second, until each has seen the other's
    # peering entry (harmless: the state is in the database and unchanged configs are not sent again).
    # A rolling Deployment adds them one by one, and so does this test.
    high = OperatorProcess(operator_env, tmp_path / "high.log", "--peering", peering, "--priority", "20")
    low: OperatorProcess | None = None
    try:
        receiver.clear()
        assert http.post(GROUP_PATH, json=_config("shared", lab, receiver)).status_code == 201
        _wait_for(http, "shared", high, _is("Ready", "Synced", 1), "Ready under the high-priority replica")
        low = OperatorProcess(operator_env, tmp_path / "low.log", "--peering", peering, "--priority", "10")
        deadline = time.monotonic() + 60
        while (
            len(http.get(f"/apis/kopf.dev/v1/clusterkopfpeerings/{peering}").json().get("status") or {}) < 2
        ):
            assert time.monotonic() < deadline, f"the second replica never joined the peering\n{low.tail()}"
            time.sleep(0.5)
        # The low-priority replica kept still: paused from the start (kopf logs a pause only when it was
        # running before), it handled nothing of the resource.
        time.sleep(3)
        assert "check_spec" not in low.tail(200000) and "keep_in_sync" not in low.tail(200000), low.tail()
        assert "check_spec" in high.tail(200000)

        high.stop()  # a clean exit withdraws it from the peering, so the other resumes at once
        receiver.clear()
        _move_to_subnet_b(http, "shared", lab)
        _wait_for(http, "shared", low, _is("Ready", "Synced", 2), "Ready under the remaining replica")
        assert "Resuming operations after the pause" in low.tail(200000)
        assert sorted(receiver.nodes()) == sorted(["node-zero", f"inv-{RUN}-1", f"inv-{RUN}-2"])
        _, sessions = database
        assert {r.scope for r in _rows(sessions, f"cr:{NAMESPACE}/shared")} == {f"cr:{NAMESPACE}/shared"}

        _delete_and_wait(http, "shared", low)
        assert _rows(sessions, f"cr:{NAMESPACE}/shared") == []
    finally:
        high.stop()
        if low is not None:
            low.stop()
