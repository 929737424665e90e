"""Nova fake hypervisor for the devcloud: real snapshot uploads, stable node identity, restart tolerance."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nova.conf
import nova.virt.node
from nova import context as nova_context
from nova import objects
from nova.compute import power_state, task_states, vm_states
from nova.image import glance
from nova.virt import fake, hardware
from oslo_config import cfg
from oslo_log import log as logging

from stackyard_osplugin.content import (
    DEFAULT_SNAPSHOT_BYTES,
    ChunkReader,
    snapshot_bytes,
    snapshot_sha256,
)

__all__ = ["SNAPSHOT_BYTES_ENV", "SnapshotFakeDriver", "snapshot_bytes", "snapshot_sha256"]

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

SNAPSHOT_BYTES_ENV = "STACKYARD_DEVCLOUD_SNAPSHOT_BYTES"
# Fixed namespace so a compute node's UUID depends only on its name (see _node_uuid).
NODE_UUID_NAMESPACE = uuid.UUID("e9435fc3-e02e-4afe-b334-d4440a20e8e8")

STACKYARD_OPTS = [
    cfg.IntOpt(
        "snapshot_bytes",
        min=0,
        help=(
            "Size in bytes of the image a server snapshot (createImage) uploads. Unset: the "
            f"{SNAPSHOT_BYTES_ENV} environment variable, else {DEFAULT_SNAPSHOT_BYTES}."
        ),
    ),
]

UpdateTaskState = Callable[..., None]


def _node_uuid(nodename: str) -> str:
    return str(uuid.uuid5(NODE_UUID_NAMESPACE, f"stackyard-devcloud-compute-node:{nodename}"))


def register_opts() -> None:
    """Register the [stackyard] group in nova.conf (idempotent, as oslo.config allows)."""
    CONF.register_opts(STACKYARD_OPTS, group="stackyard")


def configured_snapshot_size() -> int:
    """nova.conf [stackyard] snapshot_bytes, else $STACKYARD_DEVCLOUD_SNAPSHOT_BYTES, else 4 MiB."""
    register_opts()
    from_conf = CONF.stackyard.snapshot_bytes
    if from_conf is not None:
        return int(from_conf)
    from_env = os.environ.get(SNAPSHOT_BYTES_ENV, "").strip()
    if not from_env:
        return DEFAULT_SNAPSHOT_BYTES
    size = int(from_env)
    if size < 0:
        raise ValueError(f"{SNAPSHOT_BYTES_ENV} must not be negative: {from_env}")
    return size


class SnapshotFakeDriver(fake.FakeDriver):
    """nova.virt.fake.FakeDriver plus what a long-lived devcloud needs.

    - `snapshot` uploads deterministic bytes (`stackyard_osplugin.content.snapshot_bytes`) to
      Glance, so createImage images go `active` (FakeDriver only moves the task state).
    - The compute node UUID is derived from the node name and Nova's node identity file is
      written if missing, so nova-compute restarts against a kept or restored database.
    - Servers from before a nova-compute restart (FakeDriver keeps them in memory only) are
      re-adopted when Nova acts on them, so stop/start/reboot/snapshot keep working.

    Load it with `compute_driver = stackyard_osplugin.virt.SnapshotFakeDriver`; see the shim in
    nova/virt/stackyard_osplugin/ for why that value resolves.
    """

    def __init__(self, virtapi: Any, read_only: bool = False) -> None:
        super().__init__(virtapi, read_only=read_only)
        register_opts()
        # NOTE: the libvirt driver talks to Glance the same way (LibvirtDriver.__init__:
        # `self._image_api = glance.API()`); it authenticates with the request context's token.
        self._image_api = glance.API()

    # -- node identity -------------------------------------------------------------------------

    def init_host(self, host: str) -> None:
        super().init_host(host)
        self._ensure_node_identity_file()

    def _ensure_node_identity_file(self) -> None:
        # NOTE: ComputeManager._ensure_existing_node_identity (nova/compute/manager.py) refuses
        # to start a compute service that already has a service record but no `compute_id` file
        # (nova.virt.node.read_local_node_uuid), and FakeDriver never writes one. It runs right
        # after driver.init_host, so writing it here lets a restarted or restored devcloud start.
        # Only its presence matters: this driver reports node UUIDs itself (below).
        if nova.virt.node.read_local_node_uuid() is not None:
            return
        nodename = self.get_available_nodes()[0]
        path = Path(CONF.state_path) / nova.virt.node.COMPUTE_ID_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_node_uuid(nodename))
        LOG.info("Wrote node identity %s for node %s to %s", _node_uuid(nodename), nodename, path)

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        resources = super().get_available_resource(nodename)
        if resources:
            # NOTE: FakeDriver reports uuidsentinel values, random per process. The resource
            # tracker finds the compute node by that UUID (ResourceTracker._init_compute_node),
            # so after a restart it would create a second node for the same host and name and
            # fail with DuplicateRecord, and placement would disagree as well.
            resources["uuid"] = _node_uuid(nodename)
        return resources

    def get_nodenames_by_uuid(self, refresh: bool = False) -> dict[str, str]:
        return {_node_uuid(name): name for name in self.get_available_nodes()}

    # -- servers from before a restart ---------------------------------------------------------

    def _adopt(self, instance: objects.Instance) -> None:
        """Track a server Nova knows but this process does not (FakeDriver state is in memory)."""
        if instance.uuid in self.instances:
            return
        state = power_state.SHUTDOWN if instance.vm_state == vm_states.STOPPED else power_state.RUNNING
        flavor = instance.flavor
        # Claimed as spawn() does, so destroy() releases what was claimed.
        self.resources.claim(vcpus=flavor.vcpus, mem=flavor.memory_mb, disk=flavor.root_gb)
        self.instances[instance.uuid] = fake.FakeInstance(instance.name, state, instance.uuid)
        LOG.info("Adopted server from before a restart (power state %s)", state, instance=instance)

    def get_info(self, instance: objects.Instance, use_cache: bool = True) -> hardware.InstanceInfo:
        # Only settled servers are adopted: during deletes, moves and builds (task_state set)
        # "not found" is the answer Nova expects once destroy() has run.
        if (
            instance.uuid not in self.instances
            and instance.task_state is None
            and instance.vm_state in (vm_states.ACTIVE, vm_states.STOPPED)
        ):
            self._adopt(instance)
        return super().get_info(instance, use_cache=use_cache)

    def power_off(self, instance: objects.Instance, timeout: int = 0, retry_interval: int = 0) -> None:
        self._adopt(instance)
        super().power_off(instance, timeout=timeout, retry_interval=retry_interval)

    def power_on(
        self,
        context: nova_context.RequestContext,
        instance: objects.Instance,
        network_info: Any,
        block_device_info: Any = None,
        accel_info: Any = None,
        share_info: Any = None,
    ) -> None:
        self._adopt(instance)
        super().power_on(
            context,
            instance,
            network_info,
            block_device_info=block_device_info,
            accel_info=accel_info,
            share_info=share_info,
        )

    def reboot(
        self,
        context: nova_context.RequestContext,
        instance: objects.Instance,
        network_info: Any,
        reboot_type: str,
        block_device_info: Any = None,
        bad_volumes_callback: Any = None,
        accel_info: Any = None,
        share_info: Any = None,
    ) -> None:
        self._adopt(instance)
        super().reboot(
            context,
            instance,
            network_info,
            reboot_type,
            block_device_info=block_device_info,
            bad_volumes_callback=bad_volumes_callback,
            accel_info=accel_info,
            share_info=share_info,
        )

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(
        self,
        context: nova_context.RequestContext,
        instance: objects.Instance,
        image_id: str,
        update_task_state: UpdateTaskState,
    ) -> None:
        """Upload `snapshot_bytes(instance.uuid, size)` as raw/bare data of image `image_id`."""
        self._adopt(instance)
        size = configured_snapshot_size()
        # NOTE: same task-state sequence as LibvirtDriver.snapshot (nova/virt/libvirt/driver.py):
        # IMAGE_SNAPSHOT -> IMAGE_PENDING_UPLOAD -> IMAGE_UPLOADING; ComputeManager._snapshot_instance
        # then clears it expecting IMAGE_UPLOADING. The callback's default expected_state is
        # IMAGE_SNAPSHOT, set by ComputeManager.snapshot_instance before calling us.
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(
            task_state=task_states.IMAGE_UPLOADING, expected_state=task_states.IMAGE_PENDING_UPLOAD
        )
        metadata = {
            # NOTE: raw is what the fake disk claims to be. Glance's format inspector rejects
            # data that does not match a declared qcow2/vmdk/..., and raw matches anything that
            # has no other format's signature (content.snapshot_header sees to that).
            "disk_format": "raw",
            "container_format": "bare",
            "properties": {
                "image_location": "snapshot",
                "image_state": "available",
                "owner_id": instance.project_id,
            },
        }
        LOG.info("Uploading a %d-byte fake snapshot to image %s", size, image_id, instance=instance)
        # NOTE: glance.API.update (nova/image/glance.py) -> GlanceImageServiceV2._upload_data ->
        # glanceclient images.upload, which streams any object with .read() in 64 KiB chunks
        # (chunked transfer encoding, as for libvirt's snapshot file). purge_props=False keeps
        # the properties nova-api set when it created the image (image_type, instance_uuid, ...).
        self._image_api.update(
            context,
            image_id,
            metadata,
            ChunkReader(snapshot_bytes(instance.uuid, size)),
            purge_props=False,
        )
        LOG.info("Fake snapshot upload complete", instance=instance)
