"""Typed statuses: case-insensitive translation from OpenStack strings with an UNKNOWN fallback."""

from __future__ import annotations

import pytest

from stackyard.cloud.status import (
    IMAGE_FAILURES,
    PORT_FAILURES,
    SERVER_FAILURES,
    VOLUME_FAILURES,
    ImageStatus,
    OpenStackStatus,
    PortStatus,
    ServerStatus,
    VolumeStatus,
)

ENUMS: list[type[OpenStackStatus]] = [ServerStatus, ImageStatus, VolumeStatus, PortStatus]


@pytest.mark.parametrize(
    ("enum", "raw", "expected"),
    [
        (ServerStatus, "ACTIVE", ServerStatus.ACTIVE),
        (ServerStatus, "active", ServerStatus.ACTIVE),
        (ServerStatus, " Shelved_Offloaded ", ServerStatus.SHELVED_OFFLOADED),
        (ServerStatus, "VERIFY_RESIZE", ServerStatus.VERIFY_RESIZE),
        (ServerStatus, "UNKNOWN", ServerStatus.UNKNOWN),  # Nova's own UNKNOWN (host down)
        (ImageStatus, "ACTIVE", ImageStatus.ACTIVE),
        (ImageStatus, "pending_delete", ImageStatus.PENDING_DELETE),
        (VolumeStatus, "in-use", VolumeStatus.IN_USE),
        (VolumeStatus, "IN-USE", VolumeStatus.IN_USE),
        (VolumeStatus, "error_backing-up", VolumeStatus.ERROR_BACKING_UP),
        (VolumeStatus, "awaiting-transfer", VolumeStatus.AWAITING_TRANSFER),
        (PortStatus, "n/a", PortStatus.NOT_APPLICABLE),
        (PortStatus, "down", PortStatus.DOWN),
    ],
)
def test_from_openstack_is_case_insensitive(
    enum: type[OpenStackStatus], raw: str, expected: OpenStackStatus
) -> None:
    assert enum.from_openstack(raw) is expected


@pytest.mark.parametrize("enum", ENUMS)
@pytest.mark.parametrize("raw", [None, "", "   ", "FROBNICATING", "in_use "])
def test_unrecognised_statuses_fall_back_to_unknown(enum: type[OpenStackStatus], raw: str | None) -> None:
    result = enum.from_openstack(raw)
    assert result is enum["UNKNOWN"] and type(result) is enum


@pytest.mark.parametrize("enum", ENUMS)
def test_every_member_round_trips_and_prints_as_its_openstack_spelling(enum: type[OpenStackStatus]) -> None:
    for member in enum:
        assert enum.from_openstack(member.value) is member
        assert enum.from_openstack(member.value.swapcase()) is member
        assert str(member) == member.value
        assert f"{member}" == member.value


def test_failure_sets() -> None:
    assert {ServerStatus.ERROR} == SERVER_FAILURES
    assert {
        ImageStatus.KILLED,
        ImageStatus.DELETED,
        ImageStatus.PENDING_DELETE,
        ImageStatus.DEACTIVATED,
    } == IMAGE_FAILURES
    assert {VolumeStatus.ERROR, VolumeStatus.ERROR_DELETING, VolumeStatus.ERROR_EXTENDING} <= VOLUME_FAILURES
    assert all(status.value.startswith("error") for status in VOLUME_FAILURES)
    assert {PortStatus.ERROR} == PORT_FAILURES
    assert ServerStatus.UNKNOWN not in SERVER_FAILURES  # a host that is down may come back


def test_is_deleted() -> None:
    assert ServerStatus.DELETED.is_deleted and ImageStatus.DELETED.is_deleted
    assert not ServerStatus.SOFT_DELETED.is_deleted and not VolumeStatus.DELETING.is_deleted
