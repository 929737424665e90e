"""The inventory CLI as a user runs it (subprocesses, SQLite in its own data dir) against the devcloud:
sync a server's port on the shared subnet with a push to a loopback receiver, then list and show it;
`watch` with the devcloud's notifications pushes an interface attached through Nova within seconds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import openstack.connection
import pytest
import yaml

from stackyard.devcloud.access import clouds_yaml, notification_url
from stackyard.devcloud.launcher import Devcloud
from support.receiver import Receiver

pytestmark = pytest.mark.devcloud

RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


@pytest.fixture(scope="module")
def env(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("inventory-cli")
    (directory / "clouds.yaml").write_text(clouds_yaml(devcloud))
    settings = {
        "inventory": {
            "cloud": "devcloud",
            "metadata_key": "k8s-node",
            "endpoints": {"agent": {"url": receiver.url, "auth_header_env": "AGENT_AUTH", "attempts": 2}},
        }
    }
    (directory / "stackyard.yaml").write_text(yaml.safe_dump(settings))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKYARD_"))}
    return {
        **clean,
        "OS_CLIENT_CONFIG_FILE": str(directory / "clouds.yaml"),
        "STACKYARD_CONFIG": str(directory / "stackyard.yaml"),
        "STACKYARD_DATA_DIR": str(directory / "data"),
        "AGENT_AUTH": "Bearer cli-agent",
        "COLUMNS": "300",
    }


@pytest.fixture(scope="module")
def server(admin_conn: openstack.connection.Connection) -> Iterator[str]:
    image = admin_conn.image.find_image("devcloud-raw", ignore_missing=False)
    flavor = admin_conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    network = admin_conn.network.find_network("private", ignore_missing=False)
    created = admin_conn.compute.create_server(
        name=f"invcli-{RUN}",
        image_id=image.id,
        flavor_id=flavor.id,
        networks=[{"uuid": network.id}],
        metadata={"k8s-node": f"node-{RUN}"},
    )
    try:
        admin_conn.compute.wait_for_server(created, status="ACTIVE", wait=300)
        yield str(created.id)
    finally:
        admin_conn.compute.delete_server(created, ignore_missing=True)


def sy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, env=env, timeout=300)


def test_sync_pushes_then_list_and_show_read_the_inventory(
    env: dict[str, str], server: str, receiver: Receiver, admin_conn: openstack.connection.Connection
) -> None:
    project = str(admin_conn.current_project_id)
    subnet = str(admin_conn.network.find_network("private", ignore_missing=False).subnet_ids[0])
    args = ["inventory", "sync", "--vm", server, "--subnet", subnet, "--project", project, "-f", "json"]
    first = sy(env, *args, "--endpoint", "agent")
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    (node,) = json.loads(first.stdout)
    assert node["node"] == f"node-{RUN}" and node["state"] == "pushed" and node["interfaces"] == 1
    assert "1 POST(s)" in first.stderr.decode()
    assert receiver.nodes() == [f"node-{RUN}"]
    assert receiver.headers[0]["Authorization"] == "Bearer cli-agent"

    second = sy(env, *args, "--endpoint", "agent")
    assert second.returncode == 0 and json.loads(second.stdout)[0]["state"] == "unchanged"
    assert receiver.attempts == 1

    listed = sy(env, "inventory", "list", "--instance", server, "-f", "json")
    assert listed.returncode == 0, listed.stderr.decode()
    (row,) = json.loads(listed.stdout)
    assert row["provider_id"] == f"openstack:///{server}" and row["pushed"] is True

    shown = sy(env, "inventory", "show", f"node-{RUN}")
    assert shown.returncode == 0, shown.stderr.decode()
    document = json.loads(shown.stdout)
    assert document["payload"]["kind"] == "MultiNicNodeConfig"
    assert document["payload"]["interfaces"][0]["subnetId"] == subnet


def test_bad_input_names_what_is_wrong(env: dict[str, str], server: str) -> None:
    unknown = sy(
        env, "inventory", "sync", "--vm", server, "--subnet", f"no-such-{RUN}", "--endpoint", "agent"
    )
    assert unknown.returncode == 1 and f"no-such-{RUN}" in unknown.stderr.decode()
    endpoint = sy(env, "inventory", "sync", "--vm", server, "--subnet", "x", "--endpoint", "elsewhere")
    assert endpoint.returncode != 0
    missing = sy(env, "inventory", "show", f"nobody-{RUN}")
    assert missing.returncode != 0 and f"nobody-{RUN}" in missing.stderr.decode()


def test_watch_pushes_a_change_as_soon_as_nova_and_neutron_report_it(
    env: dict[str, str],
    server: str,
    receiver: Receiver,
    admin_conn: openstack.connection.Connection,
    devcloud: Devcloud,
) -> None:
    project = str(admin_conn.current_project_id)
    network = admin_conn.network.find_network("private", ignore_missing=False)
    url = notification_url(devcloud)
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed"
    args = [
        "inventory",
        "watch",
        "--vm",
        server,
        "--subnet",
        str(network.subnet_ids[0]),
        "--project",
        project,
    ]
    watch = subprocess.Popen(
        [exe, *args, "--endpoint", "agent", "--fast", "600", "--slow", "600"],
        env={**env, "STACKYARD_NOTIFICATIONS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watch.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    interface = None
    try:
        assert wait_for(lambda: any(" start: " in line for line in lines), 120), lines
        assert wait_for(
            lambda: any("consuming stackyard-inventory-cli-devcloud" in line for line in lines), 60
        ), lines
        receiver.clear()
        # A second interface on the private network, attached through Nova: the only way the watch,
        # polling every 10 minutes, sees it within seconds is the notification.
        interface = admin_conn.compute.create_server_interface(server, net_id=network.id)
        # Seconds when the machine is idle; under a full CI run's load it has taken over a minute.
        assert wait_for(lambda: bool(receiver.nodes()), 120), lines
        assert receiver.nodes() == [f"node-{RUN}"], receiver.nodes()
        assert len(receiver.received[0]["interfaces"]) == 2  # type: ignore[arg-type]
        assert any(" event: " in line and "1 POST(s)" in line for line in lines), lines
    finally:
        if interface is not None:
            admin_conn.compute.delete_server_interface(interface, server=server)
        watch.send_signal(signal.SIGTERM)
        assert watch.wait(20) == 0
        reader.join(5)
    password = urlsplit(url).password
    assert password and not any(password in line for line in lines)


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()
