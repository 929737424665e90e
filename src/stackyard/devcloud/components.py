"""The devcloud's selectable components, what each starts, and what each depends on."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from stackyard.errors import ValidationError


class Component(StrEnum):
    """A `--services` choice. `compute` and `volume` are whole services; `*-api` only the API."""

    IDENTITY = "identity"
    PLACEMENT = "placement"
    COMPUTE_API = "compute-api"
    COMPUTE = "compute"
    NETWORK = "network"
    IMAGE = "image"
    VOLUME_API = "volume-api"
    VOLUME = "volume"
    OBJECT_STORE = "object-store"


ALL = frozenset(Component)

# What a component cannot run without (identity is implied for all).
_REQUIRES: dict[Component, frozenset[Component]] = {
    Component.COMPUTE: frozenset(
        {Component.COMPUTE_API, Component.PLACEMENT, Component.NETWORK, Component.IMAGE}
    ),
    Component.VOLUME: frozenset({Component.VOLUME_API}),
}

# Databases each component owns, synced once and kept in the snapshot.
DATABASES: dict[Component, tuple[str, ...]] = {
    Component.IDENTITY: ("keystone",),
    Component.PLACEMENT: ("placement",),
    Component.COMPUTE_API: ("nova_api", "nova", "nova_cell0"),
    Component.NETWORK: ("neutron",),
    Component.IMAGE: ("glance",),
    Component.VOLUME_API: ("cinder",),
}

# Processes started for each component, in start order.
PROCESSES: dict[Component, tuple[str, ...]] = {
    Component.IDENTITY: ("keystone",),
    Component.PLACEMENT: ("placement-api",),
    Component.COMPUTE_API: ("nova-api",),
    Component.NETWORK: ("neutron-api",),
    Component.IMAGE: ("glance-api",),
    Component.VOLUME_API: ("cinder-api",),
    Component.OBJECT_STORE: ("swift-account", "swift-container", "swift-object", "swift-proxy"),
    Component.VOLUME: ("cinder-scheduler", "cinder-volume"),
    Component.COMPUTE: ("nova-conductor", "nova-scheduler", "nova-compute"),
}

_ORDER = list(PROCESSES)


def parse_components(text: str | None) -> frozenset[Component]:
    """`identity,compute-api` → a closed set of components; None or `all` means everything."""
    if text is None or text.strip() in ("", "all"):
        return ALL
    chosen: set[Component] = set()
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        try:
            chosen.add(Component(name))
        except ValueError:
            valid = ", ".join(c.value for c in Component)
            raise ValidationError("services", f"unknown service {name!r}; choose from {valid}") from None
    return close(chosen)


def close(components: Iterable[Component]) -> frozenset[Component]:
    """Add identity and every transitive requirement."""
    result = {Component.IDENTITY, *components}
    pending = list(result)
    while pending:
        for needed in _REQUIRES.get(pending.pop(), frozenset()):
            if needed not in result:
                result.add(needed)
                pending.append(needed)
    return frozenset(result)


def ordered(components: Iterable[Component]) -> list[Component]:
    chosen = set(components)
    return [c for c in _ORDER if c in chosen]


def needs_broker(components: Iterable[Component]) -> bool:
    """Only the RPC workers need RabbitMQ; the APIs alone run on the fake transport."""
    chosen = set(components)
    return Component.COMPUTE in chosen or Component.VOLUME in chosen


def databases(components: Iterable[Component]) -> list[str]:
    return [db for c in ordered(components) for db in DATABASES.get(c, ())]
