"""The devcloud is a real OpenStack: exercise every service it offers through openstacksdk."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator

import openstack
import openstack.connection
import openstack.exceptions
import pytest
import requests

from stackyard.devcloud.access import Credentials
from support.clouds import sdk_connection as connect

pytestmark = pytest.mark.devcloud

SERVICE_TYPES = {"identity", "compute", "placement", "network", "image", "block-storage", "object-store"}


@pytest.fixture(scope="module")
def admin(admin_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    conn = connect(admin_credentials)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def demo(demo_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    conn = connect(demo_credentials)
    yield conn
    conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_token_and_complete_catalog(admin: openstack.connection.Connection) -> None:
    token = admin.session.get_token()
    assert token
    catalog = admin.session.auth.get_access(admin.session).service_catalog.catalog
    types = {entry["type"] for entry in catalog}
    assert types >= SERVICE_TYPES
    for entry in catalog:
        for endpoint in entry["endpoints"]:
            assert endpoint["url"].startswith("http://127.0.0.1:"), endpoint


def test_project_user_and_role(
    admin: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    project = admin.identity.create_project(name=unique("proj"), domain_id="default")
    request.addfinalizer(lambda: admin.identity.delete_project(project, ignore_missing=True))
    user = admin.identity.create_user(name=unique("user"), password="s3cret-pw", domain_id="default")
    request.addfinalizer(lambda: admin.identity.delete_user(user, ignore_missing=True))
    member = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, member)
    assert admin.identity.validate_user_has_project_role(project, user, member)
    assignments = list(admin.identity.role_assignments(user_id=user.id, scope_project_id=project.id))
    assert [a.role["id"] for a in assignments] == [member.id]


def test_quotas_set_and_get_on_compute_volume_network(
    admin: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    project = admin.identity.create_project(name=unique("quota"), domain_id="default")
    request.addfinalizer(lambda: admin.identity.delete_project(project, ignore_missing=True))
    admin.set_compute_quotas(project.id, instances=7, cores=13, ram=4321)
    admin.set_volume_quotas(project.id, volumes=5, gigabytes=55)
    admin.set_network_quotas(project.id, port=33, network=4)
    compute = admin.get_compute_quotas(project.id)
    assert (compute.instances, compute.cores, compute.ram) == (7, 13, 4321)
    volume = admin.get_volume_quotas(project.id)
    assert (volume.volumes, volume.gigabytes) == (5, 55)
    network = admin.get_network_quotas(project.id)
    assert (network.ports, network.networks) == (33, 4)


def test_member_cannot_set_quotas(
    admin: openstack.connection.Connection, demo: openstack.connection.Connection
) -> None:
    project_id = demo.current_project_id
    with pytest.raises(openstack.exceptions.ForbiddenException):
        demo.set_compute_quotas(project_id, instances=1000)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        demo.set_network_quotas(project_id, port=1000)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        demo.set_volume_quotas(project_id, volumes=1000)
    assert admin.get_compute_quotas(project_id).instances != 1000


def test_network_subnet_and_port_with_fixed_ip(
    demo: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    net = demo.network.create_network(name=unique("net"))
    request.addfinalizer(lambda: demo.network.delete_network(net, ignore_missing=True))
    subnet = demo.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="192.168.77.0/24", name=unique("sub")
    )
    request.addfinalizer(lambda: demo.network.delete_subnet(subnet, ignore_missing=True))
    port = demo.network.create_port(
        network_id=net.id, fixed_ips=[{"subnet_id": subnet.id, "ip_address": "192.168.77.42"}]
    )
    request.addfinalizer(lambda: demo.network.delete_port(port, ignore_missing=True))
    fetched = demo.network.get_port(port.id)
    assert fetched.fixed_ips == [{"subnet_id": subnet.id, "ip_address": "192.168.77.42"}]
    assert [p.id for p in demo.network.ports(network_id=net.id, device_owner="")] == [port.id]


def test_glance_upload_and_download_with_checksum(
    demo: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    payload = hashlib.sha512(b"seed").digest() * 8192  # 512 KiB of known bytes
    image = demo.image.create_image(
        name=unique("img"),
        data=io.BytesIO(payload),
        disk_format="raw",
        container_format="bare",
        wait=True,
        timeout=60,
    )
    request.addfinalizer(lambda: demo.image.delete_image(image, ignore_missing=True))
    image = demo.image.get_image(image.id)
    assert image.status == "active"
    assert image.checksum == hashlib.md5(payload).hexdigest()
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(payload).hexdigest()
    downloaded = demo.image.download_image(image, stream=False)
    assert hashlib.sha512(downloaded.content).hexdigest() == image.hash_value


def test_server_boot_stop_start_delete(
    demo: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    image = demo.image.find_image("devcloud-raw", ignore_missing=False)
    flavor = demo.compute.find_flavor("m1.tiny", ignore_missing=False)
    network = demo.network.find_network("private", ignore_missing=False)
    server = demo.compute.create_server(
        name=unique("vm"),
        image_id=image.id,
        flavor_id=flavor.id,
        networks=[{"uuid": network.id}],
        metadata={"purpose": "devcloud-test"},
    )
    request.addfinalizer(lambda: demo.compute.delete_server(server, ignore_missing=True))
    server = demo.compute.wait_for_server(server, status="ACTIVE", wait=120)
    assert server.metadata == {"purpose": "devcloud-test"}
    ports = list(demo.network.ports(device_id=server.id))
    assert len(ports) == 1
    assert ports[0].status == "ACTIVE"
    assert ports[0].binding_vif_type not in ("binding_failed", "unbound")
    assert "private" in server.addresses
    demo.compute.stop_server(server)
    demo.compute.wait_for_server(server, status="SHUTOFF", wait=60)
    demo.compute.start_server(server)
    demo.compute.wait_for_server(server, status="ACTIVE", wait=60)
    demo.compute.delete_server(server)
    demo.compute.wait_for_delete(server, wait=60)
    assert demo.compute.find_server(server.id) is None


def snapshot_bytes_sha256(instance_uuid: str, size: int) -> str:
    """Independent mirror of the fake hypervisor's snapshot content (stackyard_osplugin.content, v1)."""
    header = f"stackyard devcloud snapshot {instance_uuid}\n".encode().ljust(512, b"\0")
    digest = hashlib.sha256(header[:size])
    produced = min(size, 512)
    block = 0
    while produced < size:
        seed = f"stackyard-devcloud-snapshot:{instance_uuid}:{block}".encode()
        data = hashlib.shake_256(seed).digest(65536)[: size - produced]
        digest.update(data)
        produced += len(data)
        block += 1
    return digest.hexdigest()


def test_create_image_from_server_uploads_real_bytes(
    demo: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    image = demo.image.find_image("devcloud-raw", ignore_missing=False)
    flavor = demo.compute.find_flavor("m1.tiny", ignore_missing=False)
    network = demo.network.find_network("private", ignore_missing=False)
    server = demo.compute.create_server(
        name=unique("snapsrc"), image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": network.id}]
    )
    request.addfinalizer(lambda: demo.compute.delete_server(server, ignore_missing=True))
    demo.compute.wait_for_server(server, status="ACTIVE", wait=120)
    image_id = demo.compute.create_server_image(server, name=unique("snap"), wait=False)
    request.addfinalizer(lambda: demo.image.delete_image(image_id, ignore_missing=True))
    snap = demo.image.wait_for_status(demo.image.get_image(image_id), status="active", wait=120)
    assert snap.size > 0
    content = demo.image.download_image(snap, stream=False).content
    assert len(content) == snap.size
    assert hashlib.sha256(content).hexdigest() == snapshot_bytes_sha256(server.id, snap.size)


def test_volume_becomes_available(
    demo: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    volume = demo.block_storage.create_volume(size=1, name=unique("vol"))
    request.addfinalizer(lambda: demo.block_storage.delete_volume(volume, ignore_missing=True))
    volume = demo.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=60)
    assert volume.size == 1


def test_swift_static_large_object_round_trip(
    demo: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    container = unique("bucket")
    demo.object_store.create_container(name=container)
    segment_size = 10 * 1024 * 1024
    total = 50 * 1024 * 1024
    whole = hashlib.md5()
    manifest = []
    for index in range(total // segment_size):
        chunk = hashlib.sha256(f"segment-{index}".encode()).digest() * (segment_size // 32)
        whole.update(chunk)
        name = f"big/segments/{index:04d}"
        obj = demo.object_store.upload_object(container, name, data=chunk)
        manifest.append({"path": f"/{container}/{name}", "etag": obj.etag, "size_bytes": len(chunk)})
    endpoint = demo.object_store.get_endpoint()
    headers = {"X-Auth-Token": demo.session.get_token()}
    url = f"{endpoint}/{container}/big"

    def cleanup() -> None:
        requests.delete(url, params={"multipart-manifest": "delete"}, headers=headers, timeout=60)
        demo.object_store.delete_container(container, ignore_missing=True)

    request.addfinalizer(cleanup)
    put = requests.put(url, params={"multipart-manifest": "put"}, json=manifest, headers=headers, timeout=60)
    assert put.status_code == 201, put.text
    got = hashlib.md5()
    size = 0
    with requests.get(url, headers=headers, stream=True, timeout=120) as response:
        assert response.status_code == 200
        for block in response.iter_content(1024 * 1024):
            got.update(block)
            size += len(block)
    assert size == total
    assert got.hexdigest() == whole.hexdigest()
