"""Typed statuses of servers, images, volumes and ports, translated once from OpenStack's strings."""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class OpenStackStatus(StrEnum):
    """Base of the status enums: case-insensitive lookup with an UNKNOWN fallback."""

    @classmethod
    def from_openstack(cls, raw: str | None) -> Self:
        """The member whose value matches `raw` ignoring case and surrounding space, else UNKNOWN."""
        if raw is not None:
            wanted = raw.strip().lower()
            for member in cls:
                if member.value.lower() == wanted:
                    return member
        return cls["UNKNOWN"]

    @property
    def is_deleted(self) -> bool:
        """True for the status a service shows for a resource that is gone but still listed."""
        return self.value.lower() == "deleted"


class ServerStatus(OpenStackStatus):
    """Nova server `status` (compute API reference, "Server Status")."""

    ACTIVE = "ACTIVE"
    BUILD = "BUILD"
    DELETED = "DELETED"
    ERROR = "ERROR"
    HARD_REBOOT = "HARD_REBOOT"
    MIGRATING = "MIGRATING"
    PASSWORD = "PASSWORD"  # noqa: S105  a status name, not a password
    PAUSED = "PAUSED"
    REBOOT = "REBOOT"
    REBUILD = "REBUILD"
    RESCUE = "RESCUE"
    RESIZE = "RESIZE"
    REVERT_RESIZE = "REVERT_RESIZE"
    SHELVED = "SHELVED"
    SHELVED_OFFLOADED = "SHELVED_OFFLOADED"
    SHUTOFF = "SHUTOFF"
    SOFT_DELETED = "SOFT_DELETED"
    SUSPENDED = "SUSPENDED"
    VERIFY_RESIZE = "VERIFY_RESIZE"
    # NOTE: Nova itself reports UNKNOWN when the compute host is unreachable; it doubles as our fallback.
    UNKNOWN = "UNKNOWN"


class ImageStatus(OpenStackStatus):
    """Glance v2 image `status`."""

    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    KILLED = "killed"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"
    UNKNOWN = "unknown"


class VolumeStatus(OpenStackStatus):
    """Cinder volume `status`."""

    CREATING = "creating"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ATTACHING = "attaching"
    DETACHING = "detaching"
    IN_USE = "in-use"
    MAINTENANCE = "maintenance"
    DELETING = "deleting"
    AWAITING_TRANSFER = "awaiting-transfer"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    BACKING_UP = "backing-up"
    RESTORING_BACKUP = "restoring-backup"
    ERROR_BACKING_UP = "error_backing-up"
    ERROR_RESTORING = "error_restoring"
    ERROR_EXTENDING = "error_extending"
    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    RETYPING = "retyping"
    EXTENDING = "extending"
    MANAGING = "managing"
    ERROR_MANAGING = "error_managing"
    UNKNOWN = "unknown"


class PortStatus(OpenStackStatus):
    """Neutron port `status`."""

    ACTIVE = "ACTIVE"
    DOWN = "DOWN"
    BUILD = "BUILD"
    ERROR = "ERROR"
    NOT_APPLICABLE = "N/A"
    UNKNOWN = "UNKNOWN"


SERVER_FAILURES: frozenset[ServerStatus] = frozenset({ServerStatus.ERROR})
# NOTE: a deactivated image cannot be downloaded or booted until reactivated by an admin, so for anyone
# waiting on an upload it is as final as killed.
IMAGE_FAILURES: frozenset[ImageStatus] = frozenset(
    {ImageStatus.KILLED, ImageStatus.DELETED, ImageStatus.PENDING_DELETE, ImageStatus.DEACTIVATED}
)
VOLUME_FAILURES: frozenset[VolumeStatus] = frozenset(
    {
        VolumeStatus.ERROR,
        VolumeStatus.ERROR_DELETING,
        VolumeStatus.ERROR_BACKING_UP,
        VolumeStatus.ERROR_RESTORING,
        VolumeStatus.ERROR_EXTENDING,
        VolumeStatus.ERROR_MANAGING,
    }
)
PORT_FAILURES: frozenset[PortStatus] = frozenset({PortStatus.ERROR})
