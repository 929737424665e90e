"""Compute operations through stackyard's gateway and service against the devcloud."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import openstack
import openstack.connection
import pytest

from stackyard.cloud.compute import ComputeGateway, ServerFilter
from stackyard.cloud.models import AddressKind, PowerState
from stackyard.cloud.session import open_session
from stackyard.cloud.status import ServerStatus
from stackyard.compute.service import InstanceCreate, InstanceService
from stackyard.compute.userdata import user_data_from_file
from stackyard.devcloud.access import Credentials
from stackyard.errors import NotFound, ResourceFailed, ValidationError
from support.clouds import sdk_connection as raw_connection

pytestmark = pytest.mark.devcloud


@pytest.fixture(scope="module")
def admin_conn(admin_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    conn = raw_connection(admin_credentials)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def gateway(demo_credentials: Credentials) -> Iterator[ComputeGateway]:
    session = open_session(raw_connection(demo_credentials), name="devcloud-demo")
    yield ComputeGateway(session)
    session.close()


@pytest.fixture(scope="module")
def service(gateway: ComputeGateway) -> InstanceService:
    return InstanceService(gateway)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def boot(service: InstanceService, request: pytest.FixtureRequest, **extra: object) -> str:
    name = unique("sy")
    spec = InstanceCreate(name=name, flavor="m1.tiny", image="devcloud-raw", networks=["private"], **extra)  # type: ignore[arg-type]
    created = service.create_instance(spec, wait=True, timeout=120)
    request.addfinalizer(lambda: service.delete_instance(created.id))
    return created.id


def test_create_with_wait_resolves_names_and_reports_full_view(
    service: InstanceService, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    script = tmp_path / "cloud-init.yaml"
    script.write_text("#cloud-config\nruncmd: [echo hello]\n")
    instance_id = boot(
        service,
        request,
        metadata={"owner": "course-101"},
        tags=["teaching", "lab"],
        user_data_b64=user_data_from_file(script),
    )
    instance = service.get_instance(instance_id)
    assert instance.status is ServerStatus.ACTIVE
    assert instance.power_state is PowerState.RUNNING
    assert instance.flavor.name == "m1.tiny"
    assert (instance.flavor.vcpus, instance.flavor.ram_mib, instance.flavor.disk_gib) == (1, 512, 1)
    assert instance.metadata["owner"] == "course-101"
    assert "stackyard_client_token" in instance.metadata
    assert sorted(instance.tags) == ["lab", "teaching"]
    assert instance.internal_ips and instance.internal_ips[0].startswith("10.0.0.")
    assert instance.external_ips == []
    assert instance.created_at is not None


def test_floating_ip_shows_as_external(
    service: InstanceService,
    admin_conn: openstack.connection.Connection,
    demo_credentials: Credentials,
    request: pytest.FixtureRequest,
) -> None:
    instance_id = boot(service, request)
    demo = raw_connection(demo_credentials)
    request.addfinalizer(demo.close)
    public = demo.network.find_network("public", ignore_missing=False)
    port = next(iter(demo.network.ports(device_id=instance_id)))
    fip = demo.network.create_ip(floating_network_id=public.id, port_id=port.id)
    request.addfinalizer(lambda: demo.network.delete_ip(fip, ignore_missing=True))
    deadline = 60
    instance = service.get_instance(instance_id)
    import time

    began = time.monotonic()
    while fip.floating_ip_address not in instance.external_ips and time.monotonic() - began < deadline:
        time.sleep(1)
        instance = service.get_instance(instance_id)
    assert fip.floating_ip_address in instance.external_ips
    assert all(a.kind is AddressKind.INTERNAL for a in instance.addresses if a.ip.startswith("10.0.0."))


def test_list_filters_and_streams(service: InstanceService, request: pytest.FixtureRequest) -> None:
    first = boot(service, request, metadata={"group": "a"}, tags=["x1"])
    second = boot(service, request, metadata={"group": "b"})
    ids = [i.id for i in service.list_instances()]
    assert first in ids and second in ids
    by_meta = [i.id for i in service.list_instances(ServerFilter(metadata={"group": "a"}))]
    assert by_meta == [first]
    by_tag = [i.id for i in service.list_instances(ServerFilter(tags=["x1"]))]
    assert by_tag == [first]
    by_status = {i.id for i in service.list_instances(ServerFilter(status=ServerStatus.SHUTOFF))}
    assert first not in by_status


def test_small_pages_are_streamed_in_order(
    gateway: ComputeGateway, service: InstanceService, request: pytest.FixtureRequest
) -> None:
    for _ in range(3):
        boot(service, request)
    everything = [i.id for i in gateway.instances(ServerFilter(sort_key="created_at", sort_dir="asc"))]
    # Re-read with a page size of 1 through the session's marker loop: same servers, same order.
    conn = gateway._conn
    session = gateway._session
    paged = [
        s.id
        for s in session.paged(
            "compute",
            "list servers",
            lambda marker, limit: list(
                conn.compute.servers(
                    details=True,
                    paginated=False,
                    sort_key="created_at",
                    sort_dir="asc",
                    limit=limit,
                    **({"marker": marker} if marker else {}),
                )
            ),
            lambda s: str(s.id),
            page_size=1,
        )
    ]
    assert paged == everything


def test_stop_start_reboot_are_idempotent(service: InstanceService, request: pytest.FixtureRequest) -> None:
    instance_id = boot(service, request)
    assert service.stop_instance(instance_id, wait=True, timeout=60).status is ServerStatus.SHUTOFF
    assert service.stop_instance(instance_id, wait=True, timeout=60).status is ServerStatus.SHUTOFF
    assert service.start_instance(instance_id, wait=True, timeout=60).status is ServerStatus.ACTIVE
    assert service.start_instance(instance_id, wait=True, timeout=60).status is ServerStatus.ACTIVE
    assert service.reboot_instance(instance_id, wait=True, timeout=60).status is ServerStatus.ACTIVE
    assert (
        service.reboot_instance(instance_id, hard=True, wait=True, timeout=60).status is ServerStatus.ACTIVE
    )


def test_metadata_set_and_unset(service: InstanceService, request: pytest.FixtureRequest) -> None:
    instance_id = boot(service, request)
    merged = service.set_metadata(instance_id, {"a": "1", "b": "2"})
    assert merged["a"] == "1" and merged["b"] == "2"
    service.unset_metadata(instance_id, ["a"])
    after = service.get_instance(instance_id).metadata
    assert "a" not in after and after["b"] == "2"


def test_delete_with_wait_then_again_is_idempotent(service: InstanceService) -> None:
    created = service.create_instance(
        InstanceCreate(name=unique("del"), flavor="m1.tiny", image="devcloud-raw", networks=["private"]),
        wait=True,
        timeout=120,
    )
    assert service.delete_instance(created.id, wait=True, timeout=120) is True
    assert service.delete_instance(created.id, wait=True) is False
    with pytest.raises(NotFound):
        service.get_instance(created.id)


def test_unknown_flavor_names_close_matches_and_creates_nothing(service: InstanceService) -> None:
    name = unique("bad")
    with pytest.raises(ValidationError) as caught:
        service.create_instance(InstanceCreate(name=name, flavor="m1.tinyy", image="devcloud-raw"))
    assert caught.value.field == "flavor"
    assert "'m1.tiny'" in caught.value.message
    with pytest.raises(ValidationError) as caught_net:
        service.create_instance(
            InstanceCreate(name=name, flavor="m1.tiny", image="devcloud-raw", networks=["privte"])
        )
    assert caught_net.value.field == "network"
    assert "'private'" in caught_net.value.message
    assert list(service.list_instances(ServerFilter(name=name))) == []


def test_ambiguous_image_name_lists_candidates(
    service: InstanceService, demo_credentials: Credentials, request: pytest.FixtureRequest
) -> None:
    demo = raw_connection(demo_credentials)
    request.addfinalizer(demo.close)
    name = unique("twin")
    ids = []
    for _ in range(2):
        image = demo.image.create_image(
            name=name,
            data=io.BytesIO(b"\0" * 1024),
            disk_format="raw",
            container_format="bare",
            allow_duplicates=True,
        )
        request.addfinalizer(lambda image=image: demo.image.delete_image(image, ignore_missing=True))
        ids.append(image.id)
    with pytest.raises(ValidationError) as caught:
        service.resolve_image(name)
    assert caught.value.field == "image"
    for image_id in ids:
        assert image_id in caught.value.message


def test_invalid_user_data_fails_before_any_cloud_call(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as missing:
        user_data_from_file(tmp_path / "nope.yaml")
    assert missing.value.field == "user_data_file"
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 60000)
    with pytest.raises(ValidationError) as too_big:
        user_data_from_file(big)
    assert "65535" in too_big.value.message


def test_scheduling_failure_raises_with_the_fault_message(
    service: InstanceService, admin_conn: openstack.connection.Connection, request: pytest.FixtureRequest
) -> None:
    # A resource no hypervisor offers: within quota, but the scheduler finds no host.
    flavor = admin_conn.compute.create_flavor(name=unique("nohost"), ram=512, vcpus=1, disk=1)
    request.addfinalizer(lambda: admin_conn.compute.delete_flavor(flavor, ignore_missing=True))
    admin_conn.compute.create_flavor_extra_specs(flavor, {"resources:CUSTOM_STACKYARD_NOWHERE": "1"})
    name = unique("err")
    with pytest.raises(ResourceFailed) as caught:
        service.create_instance(
            InstanceCreate(name=name, flavor=flavor.id, image="devcloud-raw", networks=["private"]),
            wait=True,
            timeout=120,
        )
    assert "No valid host" in str(caught.value)
    for leftover in service.list_instances(ServerFilter(name=name)):
        service.delete_instance(leftover.id)


def test_regions_flavors_images_keypairs(gateway: ComputeGateway, tmp_path: Path) -> None:
    regions = gateway.regions()
    assert [r.id for r in regions] == ["RegionOne"]
    assert {"compute", "network", "image", "identity", "object-store"} <= set(regions[0].services)
    flavors = {f.name: f for f in gateway.flavors()}
    assert flavors["m1.small"].ram_mib == 2048
    image = next(i for i in gateway.images() if i.name == "devcloud-raw")
    assert image.status.value == "active" and image.size == 1024 * 1024 and image.hash_algo == "sha512"
    name = unique("kp")
    created = gateway.create_keypair(name)
    try:
        assert created.private_key and "PRIVATE KEY" in created.private_key
        assert name in {k.name for k in gateway.keypairs()}
    finally:
        assert gateway.delete_keypair(name) is True
    assert gateway.delete_keypair(name) is False


def test_import_keypair(gateway: ComputeGateway) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    name = unique("imp")
    imported = gateway.create_keypair(name, public_key=public)
    try:
        assert imported.private_key is None
        assert imported.public_key.split()[:2] == public.split()[:2]
        assert imported.fingerprint
    finally:
        gateway.delete_keypair(name)
