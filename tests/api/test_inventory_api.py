"""Inventory over HTTP: a sync recorded and pushed, node configs listed and read, bad input, members."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openstack.connection
import pytest

from support.api_client import Api, error_of, field_of
from support.api_instances import DEVCLOUD, CreatedInstance
from support.receiver import Receiver

pytestmark = pytest.mark.devcloud


@pytest.fixture(scope="module")
def admin(api: Api) -> Iterator[httpx.Client]:
    with api.as_admin() as client:
        yield client


@pytest.fixture(scope="module")
def subnet_id(admin_conn: openstack.connection.Connection, network_id: str) -> str:
    network = admin_conn.network.get_network(network_id)
    return str(network.subnet_ids[0])


def test_a_sync_pushes_once_and_the_inventory_answers_by_node_provider_and_instance(
    admin: httpx.Client,
    admin_instance: CreatedInstance,
    admin_project_id: str,
    subnet_id: str,
    inventory_receiver: Receiver,
) -> None:
    body = {
        "provider": DEVCLOUD,
        "project_id": admin_project_id,
        "vm_ids": [admin_instance.id],
        "subnet_id": subnet_id,
        "endpoint": "receiver",
        "scope": "api-tests",
    }
    inventory_receiver.clear()
    first = admin.post("/api/v1/inventory/sync", json=body)
    assert first.status_code == 200, first.text
    result = first.json()
    (node,) = result["nodes"]
    assert node["instance_id"] == admin_instance.id and node["state"] == "pushed" and node["interfaces"] == 1
    assert result["posts"] == 1 and result["subnet_id"] == subnet_id
    assert inventory_receiver.headers[0]["Authorization"] == "Bearer api-tests-agent"
    assert inventory_receiver.received[0]["instanceId"] == admin_instance.id

    again = admin.post("/api/v1/inventory/sync", json=body).json()
    assert again["posts"] == 0 and again["nodes"][0]["state"] == "unchanged"
    assert inventory_receiver.attempts == 1  # nothing sent for an unchanged node

    provider_id = f"openstack:///{admin_instance.id}"
    listed = admin.get("/api/v1/inventory/node-configs", params={"providerId": provider_id})
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["is_pushed"] and item["payload"]["providerId"] == provider_id
    assert "api-tests-agent" not in listed.text  # the endpoint's secret is never shown
    by_instance = admin.get("/api/v1/inventory/node-configs", params={"instanceId": admin_instance.id}).json()
    assert [i["node_name"] for i in by_instance["items"]] == [item["node_name"]]
    one = admin.get(f"/api/v1/inventory/node-configs/{item['node_name']}", params={"providerId": provider_id})
    assert one.status_code == 200 and one.json()["content_hash"] == item["content_hash"]
    error_of(admin.get("/api/v1/inventory/node-configs/no-such-node"), 404)


def test_bad_sync_requests_name_what_is_wrong(
    admin: httpx.Client, admin_instance: CreatedInstance, subnet_id: str
) -> None:
    assert field_of(
        admin.post("/api/v1/inventory/sync", json={"vm_ids": ["nope"], "subnet_id": subnet_id})
    ).startswith("vm_ids")
    assert field_of(admin.post("/api/v1/inventory/sync", json={"vm_ids": [admin_instance.id]})) == "subnet"
    unknown = admin.post(
        "/api/v1/inventory/sync",
        json={"vm_ids": [admin_instance.id], "subnet_id": subnet_id, "endpoint": "elsewhere"},
    )
    assert field_of(unknown) == "endpoint" and "receiver" in unknown.text
    # A URL is not an endpoint: the API never pushes where a request says.
    url = admin.post(
        "/api/v1/inventory/sync",
        json={"vm_ids": [admin_instance.id], "subnet_id": subnet_id, "endpoint_url": "http://127.0.0.1:1/"},
    )
    assert field_of(url).endswith("endpoint_url")
    missing = admin.post(
        "/api/v1/inventory/sync",
        json={"vm_ids": [admin_instance.id], "subnet_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert "00000000-0000-0000-0000-000000000000" in str(error_of(missing, 404)["message"])


def test_members_cannot_read_or_sync_the_inventory(demo_client: httpx.Client, subnet_id: str) -> None:
    error_of(demo_client.get("/api/v1/inventory/node-configs"), 403)
    error_of(
        demo_client.post(
            "/api/v1/inventory/sync",
            json={"vm_ids": ["00000000-0000-0000-0000-000000000001"], "subnet_id": subnet_id},
        ),
        403,
    )
