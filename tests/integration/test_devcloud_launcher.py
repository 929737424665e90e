"""The launcher itself: a second, quota-sized devcloud on other ports — subset start, no-op second
`up`, port clash, `down` leaving nothing behind, and restart from the snapshot after `reset`."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.devcloud.access import credentials
from stackyard.devcloud.components import parse_components
from stackyard.devcloud.context import Layout, Ports
from stackyard.devcloud.launcher import Devcloud, UpOptions
from stackyard.devcloud.process import is_port_open
from stackyard.errors import PortInUseError
from support.clouds import sdk_connection

pytestmark = pytest.mark.devcloud

SUBSET = parse_components("identity,compute-api,network,volume-api")
PORTS = Ports(
    keystone=15000,
    placement=18778,
    nova=18774,
    neutron=19696,
    glance=19292,
    cinder=18776,
    swift_proxy=18080,
    swift_object=16200,
    swift_container=16201,
    swift_account=16202,
    mariadb=23306,
    rabbitmq=25674,
    rabbitmq_dist=25675,
    memcached=11312,
)
EXPECTED = ["memcached", "mariadb", "keystone", "nova-api", "neutron-api", "cinder-api"]


def processes_in(root: Path) -> list[int]:
    """PIDs whose working directory is inside `root` (every devcloud process runs there)."""
    found = []
    resolved = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue
        if cwd == resolved or cwd.startswith(resolved + os.sep):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def small(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devcloud]:
    root = tmp_path_factory.mktemp("small-devcloud")
    # Share the already installed OpenStack virtualenv of the main devcloud.
    (root / "venv").symlink_to(devcloud.layout.venv.resolve())
    cloud = Devcloud(Layout(root), ports=PORTS, report=lambda msg: print(f"small devcloud: {msg}"))
    yield cloud
    cloud.down()


def quota_roundtrip(cloud: Devcloud) -> None:
    creds = credentials(cloud, "admin")
    conn = sdk_connection(creds)
    try:
        demo = conn.identity.find_project("demo", ignore_missing=False)
        conn.set_compute_quotas(demo.id, instances=11)
        conn.set_network_quotas(demo.id, port=77)
        conn.set_volume_quotas(demo.id, volumes=9)
        assert conn.get_compute_quotas(demo.id).instances == 11
        assert conn.get_network_quotas(demo.id).ports == 77
        assert conn.get_volume_quotas(demo.id).volumes == 9
    finally:
        conn.close()


def test_port_clash_is_named_and_leaves_nothing_running(small: Devcloud) -> None:
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", PORTS.keystone))
        blocker.listen()
        with pytest.raises(PortInUseError) as caught:
            small.up(UpOptions(SUBSET))
    assert caught.value.service == "keystone"
    assert caught.value.port == PORTS.keystone
    assert processes_in(small.layout.root) == []


def test_subset_starts_only_what_quota_work_needs(small: Devcloud) -> None:
    began = time.monotonic()
    result = small.up(UpOptions(SUBSET))
    print(f"quota subset up in {time.monotonic() - began:.1f} s (restored={result.restored_snapshot})")
    assert result.started == EXPECTED
    statuses = small.status()
    assert [s.name for s in statuses] == EXPECTED
    assert all(s.is_healthy for s in statuses), statuses
    assert not is_port_open("127.0.0.1", PORTS.rabbitmq)
    assert not is_port_open("127.0.0.1", PORTS.glance)
    quota_roundtrip(small)


def test_second_up_is_a_no_op(small: Devcloud) -> None:
    pids = {s.name: s.pid for s in small.status()}
    result = small.up(UpOptions(SUBSET))
    assert result.started == []
    assert result.already_running == EXPECTED
    assert {s.name: s.pid for s in small.status()} == pids


def test_down_leaves_no_process_behind(small: Devcloud) -> None:
    assert processes_in(small.layout.root)
    stopped = small.down()
    assert set(EXPECTED) <= set(stopped)
    assert processes_in(small.layout.root) == []
    assert not any(is_port_open("127.0.0.1", port) for port in (PORTS.keystone, PORTS.nova, PORTS.mariadb))


def test_reset_then_up_restores_the_snapshot(small: Devcloud) -> None:
    small.reset(keep_snapshot=True)
    assert not small.layout.data.exists()
    began = time.monotonic()
    result = small.up(UpOptions(SUBSET))
    print(f"quota subset up from snapshot in {time.monotonic() - began:.1f} s")
    assert result.restored_snapshot
    assert not result.saved_snapshot
    quota_roundtrip(small)
    small.down()
    assert processes_in(small.layout.root) == []


EXTERNAL_PORTS = Ports(
    keystone=25000,
    placement=28778,
    nova=28774,
    neutron=29696,
    glance=29292,
    cinder=28776,
    swift_proxy=28080,
    swift_object=26200,
    swift_container=26201,
    swift_account=26202,
    mariadb=33306,
    rabbitmq=35674,
    rabbitmq_dist=35675,
    memcached=11313,
)


def test_given_database_and_broker_are_used_instead_of_private_ones(
    devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """--db-url/--broker-url: the main devcloud's MariaDB and RabbitMQ stand in for servers a user runs."""
    from stackyard.devcloud import backing, database
    from stackyard.devcloud.state import DevcloudState, load_secrets

    main_secrets = load_secrets(devcloud.layout)
    assert main_secrets is not None
    main_state = DevcloudState.load(devcloud.layout)
    root = tmp_path_factory.mktemp("external-devcloud")
    (root / "venv").symlink_to(devcloud.layout.venv.resolve())
    cloud = Devcloud(
        Layout(root), ports=EXTERNAL_PORTS, report=lambda msg: print(f"external devcloud: {msg}")
    )
    db_url = main_state.db_base_url
    broker_url = backing.add_private_vhost(devcloud._context(main_state, main_secrets), "external-test")
    try:
        result = cloud.up(UpOptions(parse_components("volume"), db_url=db_url, broker_url=broker_url))
        assert "mariadb" not in result.started and "rabbitmq" not in result.started
        assert {"keystone", "cinder-api", "cinder-scheduler", "cinder-volume"} <= set(result.started)
        creds = credentials(cloud, "admin")
        conn = sdk_connection(creds)
        volume = conn.block_storage.create_volume(size=1, name="external-backing")
        volume = conn.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=60)
        conn.block_storage.delete_volume(volume)
        conn.close()
        state = DevcloudState.load(cloud.layout)
        secrets = load_secrets(cloud.layout)
        assert secrets is not None
        ctx = cloud._context(state, secrets)
        server = database.DbServer.from_url(db_url)
        assert database.existing_databases(ctx, server, ["keystone", "cinder"]) == {"keystone", "cinder"}
        assert ctx.db_prefix == "stackyard_devcloud_"
        cloud.reset(keep_snapshot=True)
        assert database.existing_databases(ctx, server, ["keystone", "cinder"]) == set()
    finally:
        cloud.down()
    assert processes_in(root) == []
