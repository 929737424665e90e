"""Notifications as inventory events: oslo.messaging envelopes of each kind, malformed bodies refused
with the part named, and which watched sets an event affects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from stackyard.errors import ValidationError
from stackyard.inventory.events import (
    EventKind,
    InventoryEvent,
    PortChange,
    WatchedSet,
    affects,
    parse_notification,
    queue_name,
    redact_url,
    unwrap,
)

VM = "6f0d4c3e-9a55-4c1f-8a57-1f1c1e2b7a10"
OTHER_VM = "0b8e4a8e-3f0a-4a52-9c36-3f0a7c1b2d44"
NET = "42f53679-49b6-42b5-8793-61293d9c1014"
OTHER_NET = "4e06af85-24d8-48dd-8886-cc2a50f150e7"
PORT = "e913cc77-61c3-4145-ad15-cfc75e22e2fa"


def envelope(event_type: str, payload: object, **extra: object) -> bytes:
    """A messagingv2 body as Neutron and Nova publish it (context keys included, as they are)."""
    message = {
        "_context_auth_token": "gAAAA-secret-token",
        "_context_project_id": "5b2fb6c97ba24ed0ae28d00ef3330128",
        "_unique_id": "u-1",
        "event_type": event_type,
        "message_id": "m-1",
        "payload": payload,
        "priority": "INFO",
        "publisher_id": "network.vm",
        "timestamp": "2026-12-03 06:56:49.150719",
        **extra,
    }
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)}).encode()


def neutron_port(port_id: str = PORT, device_id: str = VM, network_id: str = NET) -> dict[str, object]:
    return {
        "id": port_id,
        "network_id": network_id,
        "device_id": device_id,
        "mac_address": "fa:16:3e:5e:aa:0c",
        "status": "ACTIVE",
        "fixed_ips": [{"subnet_id": "s-1", "ip_address": "10.77.0.8"}],
    }


def nova_payload(uuid: str = VM) -> dict[str, object]:
    return {
        "nova_object.name": "InstanceActionPayload",
        "nova_object.namespace": "nova",
        "nova_object.version": "1.8",
        "nova_object.data": {
            "uuid": uuid,
            "ip_addresses": [
                {"nova_object.data": {"port_uuid": PORT, "address": "10.77.0.8", "mac": "fa:16:3e:5e:aa:0c"}}
            ],
        },
    }


def test_port_create_update_and_delete_carry_the_port_its_vm_and_network() -> None:
    for event_type, kind in (
        ("port.create.end", EventKind.PORT_CREATED),
        ("port.update.end", EventKind.PORT_UPDATED),
    ):
        event = parse_notification(envelope(event_type, {"port": neutron_port()}))
        assert event == InventoryEvent(
            kind,
            event_type,
            "m-1",
            "network.vm",
            datetime(2026, 12, 3, 6, 56, 49, 150719, tzinfo=UTC),
            ports=(PortChange(PORT, VM, NET),),
        )
    deleted = parse_notification(
        envelope("port.delete.end", {"port_id": PORT, "port": neutron_port(device_id="")})
    )
    assert deleted is not None and deleted.kind is EventKind.PORT_DELETED
    assert deleted.ports == (PortChange(PORT, None, NET),)  # "" (unattached) is no VM
    # An older Neutron sends only the id on delete.
    bare = parse_notification(envelope("port.delete.end", {"port_id": PORT}))
    assert bare is not None and bare.ports == (PortChange(PORT, None, None),)


def test_a_bulk_create_lists_every_port() -> None:
    ports = [neutron_port("p-1"), neutron_port("p-2", device_id="", network_id=OTHER_NET)]
    event = parse_notification(envelope("port.create.end", {"ports": ports}))
    assert event is not None
    assert event.ports == (PortChange("p-1", VM, NET), PortChange("p-2", None, OTHER_NET))


def test_nova_versioned_interface_events_and_instance_deletes_name_the_vm() -> None:
    for event_type, kind in (
        ("instance.interface_attach.end", EventKind.INTERFACE_ATTACHED),
        ("instance.interface_detach.end", EventKind.INTERFACE_DETACHED),
        ("instance.delete.end", EventKind.INSTANCE_DELETED),
    ):
        event = parse_notification(
            envelope(event_type, nova_payload(), publisher_id="nova-compute:stackyard-devcloud")
        )
        assert event is not None
        assert (event.kind, event.instance_id, event.ports) == (kind, VM, ())
        assert event.publisher_id == "nova-compute:stackyard-devcloud"
    legacy = parse_notification(envelope("compute.instance.delete.end", {"instance_id": VM}))
    assert legacy is not None and (legacy.kind, legacy.instance_id) == (EventKind.INSTANCE_DELETED, VM)


def test_other_notifications_and_start_events_are_not_inventory_events() -> None:
    for event_type in ("network.create.end", "port.update.start", "instance.interface_attach.start"):
        assert parse_notification(envelope(event_type, {"port": neutron_port()})) is None


def test_a_bare_v1_message_and_an_already_decoded_body_parse_too() -> None:
    message = {"event_type": "port.update.end", "payload": {"port": neutron_port()}, "timestamp": "junk"}
    event = parse_notification(json.dumps(message))
    assert event is not None and event.ports[0].port_id == PORT and event.timestamp is None
    decoded = json.loads(envelope("port.update.end", {"port": neutron_port()}))
    assert parse_notification(decoded) == parse_notification(
        envelope("port.update.end", {"port": neutron_port()})
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"\xff\xfe not utf-8", "body"),
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"hello": "world"}', "body"),
        (json.dumps({"oslo.version": "3.0", "oslo.message": "{}"}).encode(), "oslo.version"),
        (json.dumps({"oslo.version": "2.0", "oslo.message": {"event_type": "x"}}).encode(), "oslo.message"),
        (json.dumps({"oslo.version": "2.0", "oslo.message": "{oops"}).encode(), "oslo.message"),
        (json.dumps({"oslo.version": "2.0", "oslo.message": "[]"}).encode(), "oslo.message"),
        (
            json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps({"payload": {}})}).encode(),
            "event_type",
        ),
        (envelope("", {}), "event_type"),
        (envelope("port.update.end", "a string"), "payload"),
        (envelope("port.update.end", {"port": "p"}), "payload.port"),
        (envelope("port.update.end", {"port": {"device_id": VM}}), "payload.port.id"),
        (envelope("port.create.end", {"ports": []}), "payload.ports"),
        (envelope("port.delete.end", {}), "payload.port"),
        (envelope("instance.interface_attach.end", {"nova_object.data": {}}), "payload.uuid"),
    ],
)
def test_malformed_bodies_are_refused_naming_the_part(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_notification(body)
    assert info.value.field == field
    assert "secret-token" not in str(info.value)


def test_unwrap_returns_the_inner_message() -> None:
    inner = unwrap(envelope("port.update.end", {"port": neutron_port()}))
    assert inner["event_type"] == "port.update.end" and inner["priority"] == "INFO"


def port_event(port_id: str | None, device_id: str | None, network_id: str | None) -> InventoryEvent:
    return InventoryEvent(
        EventKind.PORT_UPDATED,
        "port.update.end",
        None,
        None,
        None,
        ports=(PortChange(port_id, device_id, network_id),),
    )


def test_a_port_of_a_watched_vm_on_the_watched_network_affects_it() -> None:
    watched = WatchedSet.of([VM], NET, [PORT])
    assert affects(port_event("new", VM, NET), watched)  # a new interface of a watched VM
    assert not affects(port_event("new", VM, OTHER_NET), watched)  # another network: not in the subnet
    assert affects(port_event("new", VM, None), watched)  # network unknown: sync to be sure
    assert not affects(port_event("new", OTHER_VM, NET), watched)  # another VM's port
    assert not affects(port_event("new", None, NET), watched)  # an unattached port


def test_a_port_the_configs_hold_affects_it_whatever_it_says_now() -> None:
    watched = WatchedSet.of([VM], NET, [PORT])
    assert affects(port_event(PORT, None, NET), watched)  # detached
    assert affects(port_event(PORT, OTHER_VM, NET), watched)  # moved to another VM
    assert affects(port_event(PORT, None, None), watched)  # deleted (an older Neutron's payload)


def test_before_the_first_sync_any_network_of_a_watched_vm_counts() -> None:
    watched = WatchedSet.of([VM])
    assert affects(port_event("new", VM, OTHER_NET), watched)


def test_nova_events_affect_the_watched_vms_only() -> None:
    attach = InventoryEvent(
        EventKind.INTERFACE_ATTACHED, "instance.interface_attach.end", None, None, None, instance_id=VM
    )
    assert affects(attach, WatchedSet.of([VM], NET))
    assert not affects(attach, WatchedSet.of([OTHER_VM], NET, [PORT]))


def test_a_bulk_event_affects_when_any_of_its_ports_does() -> None:
    event = InventoryEvent(
        EventKind.PORT_CREATED,
        "port.create.end",
        None,
        None,
        None,
        ports=(PortChange("a", OTHER_VM, NET), PortChange("b", VM, NET)),
    )
    assert affects(event, WatchedSet.of([VM], NET))
    assert "port a, b" in event.describe()


def test_queue_names_are_dedicated_and_tidy() -> None:
    assert queue_name("cli:devcloud/proj/subnet-a") == "stackyard-inventory-cli-devcloud-proj-subnet-a"
    assert queue_name("cr:ns/name") == "stackyard-inventory-cr-ns-name"
    assert queue_name("///") == "stackyard-inventory"
    assert len(queue_name("x" * 500)) == 200


def test_broker_passwords_never_reach_a_log_line() -> None:
    assert redact_url("amqp://stackyard:s3cret@127.0.0.1:15673/") == "amqp://stackyard:***@127.0.0.1:15673/"
    assert redact_url("amqp://guest@host//") == "amqp://guest@host//"
    assert redact_url("amqp://u:p%40ss@[::1]:5672/vh") == "amqp://u:***@[::1]:5672/vh"
    assert "s3cret" not in redact_url("amqp://u:s3cret@host:notaport/")
