"""In-process check: Nova's loader loads SnapshotFakeDriver; node identity, adoption and snapshots work.

Run in the OpenStack virtualenv, in its own process (it configures oslo.config's global CONF):
`python -W ignore -m tests.check_virt` from the osplugin directory. Exits non-zero on the first failure.
"""

import hashlib
import os
import tempfile
from typing import Any

import nova.conf
import nova.virt.node
from nova import context as nova_context
from nova import exception, objects
from nova.compute import power_state, task_states, vm_states
from nova.virt import driver, fake
from stackyard_osplugin.content import snapshot_sha256

DRIVER = "stackyard_osplugin.virt.SnapshotFakeDriver"
HOST = "stackyard-devcloud"


class RecordingImageAPI:
    """Stands in for nova.image.glance.API: reads the upload the way glanceclient does."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, dict[str, Any], bool, int, str]] = []

    def update(
        self, context: Any, image_id: str, meta: dict[str, Any], data: Any = None, purge_props: bool = True
    ) -> None:
        digest, size = hashlib.sha256(), 0
        while chunk := data.read(64 * 1024):
            digest.update(chunk)
            size += len(chunk)
        self.uploads.append((image_id, meta, purge_props, size, digest.hexdigest()))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="stackyard-osplugin-") as state_path:
        check(state_path)


def check(state_path: str) -> None:
    objects.register_all()
    conf = nova.conf.CONF
    conf([], project="nova")
    conf.set_override("state_path", state_path)
    conf.set_override("host", HOST)

    # NOTE: load_compute_driver imports "nova.virt." + compute_driver; the shim makes this resolve.
    drv = driver.load_compute_driver(fake.FakeVirtAPI(), DRIVER)
    drv.init_host(HOST)
    node_uuid = drv.get_available_resource(HOST)["uuid"]
    assert nova.virt.node.read_local_node_uuid() == node_uuid
    assert drv.get_nodenames_by_uuid() == {node_uuid: HOST}
    again = driver.load_compute_driver(fake.FakeVirtAPI(), DRIVER)
    again.init_host(HOST)
    assert again.get_available_resource(HOST)["uuid"] == node_uuid
    print(f"ok  loaded by nova's loader; stable node uuid {node_uuid}, compute_id written")

    ctx = nova_context.get_admin_context()
    flavor = objects.Flavor(
        vcpus=1, memory_mb=512, root_gb=1, ephemeral_gb=0, swap=0, name="m1.tiny", flavorid="1"
    )
    instance = objects.Instance(
        id=1, uuid="0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", project_id="p1", vm_state=vm_states.ACTIVE,
        task_state=None, flavor=flavor, host=HOST,
    )  # fmt: skip
    assert drv.get_info(instance).state == power_state.RUNNING
    instance.task_state = task_states.POWERING_OFF
    drv.power_off(instance)
    assert drv.get_info(instance).state == power_state.SHUTDOWN
    drv.power_on(ctx, instance, None)
    assert drv.get_info(instance).state == power_state.RUNNING
    print("ok  server unknown to this process adopted; stop/start change its power state")

    images = RecordingImageAPI()
    drv._image_api = images
    transitions: list[tuple[str, str]] = []

    def update_task_state(task_state: str, expected_state: str = task_states.IMAGE_SNAPSHOT) -> None:
        transitions.append((task_state, expected_state))

    conf.set_override("snapshot_bytes", 1_000_003, group="stackyard")
    drv.snapshot(ctx, instance, "image-1", update_task_state)
    conf.clear_override("snapshot_bytes", group="stackyard")
    os.environ["STACKYARD_DEVCLOUD_SNAPSHOT_BYTES"] = "70000"
    drv.snapshot(ctx, instance, "image-2", update_task_state)
    del os.environ["STACKYARD_DEVCLOUD_SNAPSHOT_BYTES"]
    drv.snapshot(ctx, instance, "image-3", update_task_state)
    assert transitions[:2] == [
        (task_states.IMAGE_PENDING_UPLOAD, task_states.IMAGE_SNAPSHOT),
        (task_states.IMAGE_UPLOADING, task_states.IMAGE_PENDING_UPLOAD),
    ], transitions
    for (image_id, meta, purge, size, digest), expected_size in zip(
        images.uploads, (1_000_003, 70_000, 4 * 1024 * 1024), strict=True
    ):
        assert (meta["disk_format"], meta["container_format"], purge) == ("raw", "bare", False), meta
        assert (size, digest) == (expected_size, snapshot_sha256(instance.uuid, expected_size)), image_id
    print("ok  snapshot: libvirt task states, raw/bare, size from nova.conf/env/default, documented content")

    instance.task_state = task_states.DELETING
    drv.destroy(ctx, instance, None)
    try:
        drv.get_info(instance)
    except exception.InstanceNotFound:
        pass
    else:
        raise AssertionError("a server being deleted was re-adopted")
    assert drv.resources.vcpus_used == 0
    print("ok  delete: not re-adopted, resources released")


if __name__ == "__main__":
    main()
