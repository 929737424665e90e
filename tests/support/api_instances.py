"""Instances made through the API in tests: their bodies, and cleanup registered at creation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
import openstack.connection
import pytest

DEVCLOUD = "devcloud"  # the provider serving the devcloud as its admin
BROKEN = "broken"  # a provider whose Keystone port is closed
FLAVOR = "m1.tiny"
IMAGE = "devcloud-raw"
NETWORK = "private"
INSTANCES = f"/api/v1/providers/{DEVCLOUD}/instances"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def delete_server(conn: openstack.connection.Connection, server_id: str) -> None:
    """Cleanup through the SDK (idempotent), so it runs even when the API is the thing that broke."""
    conn.compute.delete_server(server_id, ignore_missing=True)


def create_instance(
    client: httpx.Client,
    request: pytest.FixtureRequest,
    conn: openstack.connection.Connection,
    body: dict[str, object],
) -> httpx.Response:
    """POST an instance to the devcloud provider; when it is accepted, register its deletion at once."""
    response = client.post(INSTANCES, json=body)
    if response.status_code == 202:
        server_id = str(response.json()["id"])
        request.addfinalizer(lambda: delete_server(conn, server_id))
    return response


def instance_body(image_id: str, network_id: str, **extra: object) -> dict[str, object]:
    return {
        "name": unique("sy-api"),
        "type": FLAVOR,
        "image_id": image_id,
        "network_ids": [network_id],
        **extra,
    }


@dataclass(frozen=True)
class CreatedInstance:
    """An instance the admin created through the API, and what the API answered to the create."""

    id: str
    create_status: int
    create_headers: dict[str, str]
    create_body: dict[str, object]
    active: dict[str, object] = field(default_factory=dict)  # its status view once ACTIVE
