"""Neutron and Nova notifications as inventory events, and which watched VMs they affect (pure).

A notification reaches the broker as an oslo.messaging envelope: `{"oslo.version": "2.0",
"oslo.message": "<JSON text>"}` (driver `messagingv2`), or as the bare message (driver `messaging`).
The message carries `event_type`, `publisher_id`, `message_id`, `timestamp`, `priority`, `payload`
and the caller's request context as `_context_*` keys, a Keystone token among them: nothing here
keeps or logs the context.

Events that can change a node config:
- Neutron `port.create.end` / `port.update.end` (payload `{"port": {...}}`, or `{"ports": [...]}`
  for a bulk create) and `port.delete.end` (`{"port_id": ..., "port": {...}}`);
- Nova's versioned `instance.interface_attach.end` / `instance.interface_detach.end` and
  `instance.delete.end` (payload `{"nova_object.data": {"uuid": ...}}`), and the legacy
  `compute.instance.delete.end` (payload `{"instance_id": ...}`).

NOTE: Nova has no legacy (unversioned) interface attach/detach notification; they exist only as
versioned ones (nova/compute/manager.py `_attach_interface`, `notify_about_instance_action`), sent to
the `versioned_notifications` topic, so a consumer binds `versioned_notifications.info` on `nova`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from stackyard.errors import ValidationError

ENVELOPE_VERSION = "2.0"
QUEUE_PREFIX = "stackyard-inventory"


class EventKind(StrEnum):
    PORT_CREATED = "port.create.end"
    PORT_UPDATED = "port.update.end"
    PORT_DELETED = "port.delete.end"
    INTERFACE_ATTACHED = "instance.interface_attach.end"
    INTERFACE_DETACHED = "instance.interface_detach.end"
    INSTANCE_DELETED = "instance.delete.end"


# event_type -> kind; every other event type is not about the inventory and is dropped quietly.
EVENT_TYPES: dict[str, EventKind] = {
    **{kind.value: kind for kind in EventKind},
    "compute.instance.delete.end": EventKind.INSTANCE_DELETED,
}
_PORT_KINDS = frozenset({EventKind.PORT_CREATED, EventKind.PORT_UPDATED, EventKind.PORT_DELETED})


@dataclass(frozen=True)
class PortChange:
    """What a port notification says about one port (None: not in the payload)."""

    port_id: str | None
    device_id: str | None  # the VM; Neutron sends "" for an unattached port, kept as None
    network_id: str | None


@dataclass(frozen=True)
class InventoryEvent:
    """A notification that may change node configs: port changes, or a VM whose interfaces changed."""

    kind: EventKind
    event_type: str
    message_id: str | None
    publisher_id: str | None
    timestamp: datetime | None
    ports: tuple[PortChange, ...] = ()
    instance_id: str | None = None

    def describe(self) -> str:
        """One line for logs: kind and ids, nothing from the request context."""
        if self.instance_id is not None:
            return f"{self.event_type} instance {self.instance_id}"
        ids = ", ".join(p.port_id or "?" for p in self.ports)
        return f"{self.event_type} port {ids}"


@dataclass(frozen=True)
class WatchedSet:
    """What one sync scope depends on: its VMs, its subnet's network, the ports its configs hold."""

    instance_ids: frozenset[str]
    network_id: str | None = None  # None: not known yet (before the first sync), any network counts
    port_ids: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, instance_ids: Iterable[str], network_id: str | None = None, port_ids: Iterable[str] = ()
    ) -> WatchedSet:
        return cls(frozenset(instance_ids), network_id, frozenset(port_ids))


def affects(event: InventoryEvent, watched: WatchedSet) -> bool:
    """Whether the event may change a config of the watched set.

    A Nova event counts for a watched VM. A port event counts when the port is one the configs hold
    (it may have been detached, moved or deleted), or when it belongs to a watched VM on the watched
    network (a new or changed interface). Ports of other networks never reach the subnet's configs.
    """
    if event.instance_id is not None:
        return event.instance_id in watched.instance_ids
    for port in event.ports:
        if port.port_id is not None and port.port_id in watched.port_ids:
            return True
        is_watched_vm = port.device_id is not None and port.device_id in watched.instance_ids
        if is_watched_vm and (watched.network_id is None or port.network_id in (None, watched.network_id)):
            return True
    return False


def parse_notification(body: bytes | str | Mapping[str, object]) -> InventoryEvent | None:
    """The inventory event in an AMQP message body; None for a well-formed notification of another kind.

    Raises ValidationError naming the part that is malformed (the caller logs it and drops it).
    """
    message = unwrap(body)
    event_type = message.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise ValidationError("event_type", "missing or not a string")
    kind = EVENT_TYPES.get(event_type)
    if kind is None:
        return None
    payload = message.get("payload")
    if not isinstance(payload, Mapping):
        raise ValidationError("payload", f"{event_type}: expected an object")
    message_id = _text(message.get("message_id"))
    publisher_id = _text(message.get("publisher_id"))
    timestamp = _timestamp(message.get("timestamp"))
    if kind in _PORT_KINDS:
        ports = _ports(event_type, payload)
        return InventoryEvent(kind, event_type, message_id, publisher_id, timestamp, ports=ports)
    instance_id = _instance_id(event_type, payload)
    return InventoryEvent(kind, event_type, message_id, publisher_id, timestamp, instance_id=instance_id)


def unwrap(body: bytes | str | Mapping[str, object]) -> Mapping[str, object]:
    """The notification inside an oslo.messaging envelope (or a bare v1 message)."""
    document = _json_object(body, "body")
    if "oslo.version" in document:
        version = document["oslo.version"]
        if not isinstance(version, str) or version.split(".")[0] != ENVELOPE_VERSION.split(".")[0]:
            raise ValidationError("oslo.version", f"unsupported envelope version {version!r}")
        inner = document.get("oslo.message")
        if not isinstance(inner, str):
            raise ValidationError("oslo.message", "missing or not a JSON string")
        return _json_object(inner, "oslo.message")
    if "event_type" in document:
        return document  # the `messaging` (v1) driver sends the message itself
    raise ValidationError("body", "neither an oslo.messaging envelope nor a notification")


def _json_object(raw: bytes | str | Mapping[str, object], field: str) -> Mapping[str, object]:
    if isinstance(raw, Mapping):
        return raw
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        loaded: object = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(field, f"not JSON ({type(exc).__name__})") from None
    if not isinstance(loaded, dict):
        raise ValidationError(field, f"expected a JSON object, got {type(loaded).__name__}")
    return loaded


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _port(event_type: str, port: object) -> PortChange:
    if not isinstance(port, Mapping):
        raise ValidationError("payload.port", f"{event_type}: expected an object")
    change = PortChange(_text(port.get("id")), _text(port.get("device_id")), _text(port.get("network_id")))
    if change.port_id is None:
        raise ValidationError("payload.port.id", f"{event_type}: missing")
    return change


def _ports(event_type: str, payload: Mapping[str, object]) -> tuple[PortChange, ...]:
    if "ports" in payload:  # a bulk create
        ports = payload["ports"]
        if not isinstance(ports, list) or not ports:
            raise ValidationError("payload.ports", f"{event_type}: expected a non-empty list")
        return tuple(_port(event_type, port) for port in ports)
    if "port" in payload:
        port = payload["port"]
        if not isinstance(port, Mapping):
            raise ValidationError("payload.port", f"{event_type}: expected an object")
        return (_port(event_type, {"id": payload.get("port_id"), **port}),)
    port_id = _text(payload.get("port_id"))  # an older Neutron's delete.end carries the id only
    if port_id is None:
        raise ValidationError("payload.port", f"{event_type}: no port in the payload")
    return (PortChange(port_id, None, None),)


def _instance_id(event_type: str, payload: Mapping[str, object]) -> str:
    data = payload.get("nova_object.data")
    found = _text(data.get("uuid")) if isinstance(data, Mapping) else _text(payload.get("instance_id"))
    if found is None:
        raise ValidationError("payload.uuid", f"{event_type}: no instance uuid")
    return found


def _timestamp(value: object) -> datetime | None:
    """oslo.messaging writes `2026-12-03 06:56:49.150719`, in UTC without an offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def queue_name(scope: str) -> str:
    """A dedicated queue per scope: `stackyard-inventory-<scope>`, in the characters AMQP tools like."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", scope).strip("-")
    return f"{QUEUE_PREFIX}-{cleaned}"[:200] if cleaned else QUEUE_PREFIX


def redact_url(url: str) -> str:
    """The broker URL with its password replaced, for logs and messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<unparsable broker URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
