"""The network inventory page: node configs by cloud, with interfaces, last sync and errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openstack.connection
import pytest

from support.browser import Browser, Dashboard

pytestmark = pytest.mark.devcloud


@pytest.fixture(scope="module")
def synced(
    dashboard: Dashboard, admin_conn: openstack.connection.Connection, image_id: str, network_id: str
) -> Iterator[tuple[str, str]]:
    """An instance synced into the inventory over the REST API (no endpoint: recorded only)."""
    flavor = admin_conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    name = f"webt-inv-{uuid.uuid4().hex[:6]}"
    server = admin_conn.compute.create_server(
        name=name, flavor_id=flavor.id, image_id=image_id, networks=[{"uuid": network_id}]
    )
    try:
        admin_conn.compute.wait_for_server(server, status="ACTIVE", wait=300)
        subnet_id = admin_conn.network.get_network(network_id).subnet_ids[0]
        with dashboard.api() as api:
            response = api.post(
                "/api/v1/inventory/sync",
                json={
                    "provider": "devcloud",
                    "project_id": admin_conn.current_project_id,
                    "vm_ids": [server.id],
                    "subnet_id": subnet_id,
                },
            )
        assert response.status_code == 200, response.text
        yield name, str(server.id)
    finally:
        admin_conn.compute.delete_server(server.id, ignore_missing=True)


def test_node_configs_are_listed_by_cloud_with_their_interfaces(
    admin_browser: Browser, member_browser: Browser, synced: tuple[str, str]
) -> None:
    name, server_id = synced
    admin_browser.open(f"/ui/inventory?node={name}")
    row = admin_browser.wait_for(f"tr[data-node='{name}']")
    assert server_id in row.text and "MTU" in row.text and "UTC" in row.text
    assert "not pushed" in row.text  # no endpoint was named: recorded only
    assert admin_browser.find("main section h2").text.startswith("devcloud")
    admin_browser.shot("inventory")
    member_browser.open("/ui/inventory")
    assert member_browser.wait_for("main h1").text == "Not allowed"
