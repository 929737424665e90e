"""Pure parts of the operator: clouds.yaml text from a Secret, the API server address, the receiver."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError

from stackyard.cloud.connect import resolve_clouds_yaml_text
from stackyard.errors import ConfigError
from stackyard.operator.kube import api_server_of
from stackyard.operator.receiver import check_payload, create_receiver
from stackyard.operator.reconcile import database_problem

CLOUDS = """
clouds:
  prod:
    auth: {auth_url: "https://keystone.example:5000/v3", username: u, password: s3cr3t-pw,
           project_name: p, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
"""

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def payload(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "apiVersion": "stackyard.io/v1alpha1",
        "kind": "MultiNicNodeConfig",
        "nodeName": "node-1",
        "instanceId": "6f1b6d0e-58c4-4a8e-9a39-3c0f1d1e2a10",
        "providerId": "openstack:///6f1b6d0e-58c4-4a8e-9a39-3c0f1d1e2a10",
        "interfaces": [
            {
                "id": "p1",
                "macAddress": "fa:16:3e:00:00:01",
                "address": "10.0.0.5",
                "cidr": "10.0.0.0/24",
                "mtu": 1450,
            }
        ],
    }
    body.update(changes)
    return body


def test_a_cloud_of_a_clouds_yaml_text_resolves_with_its_region() -> None:
    resolved = resolve_clouds_yaml_text(CLOUDS, "prod", source="Secret ns/creds key 'clouds.yaml'")
    assert resolved.name == "prod" and resolved.region_name == "RegionOne"
    assert resolved.auth_url == "https://keystone.example:5000/v3"


def test_an_unknown_cloud_lists_the_known_ones_and_never_the_values() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_clouds_yaml_text(CLOUDS, "dev", source="Secret ns/creds key 'clouds.yaml'")
    assert "known clouds: prod" in str(info.value) and "Secret ns/creds" in str(info.value)
    assert "s3cr3t-pw" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clouds: [a, b", "not valid YAML at line 1"),
        ("just text", "top-level `clouds:`"),
        ("clouds: 3", "`clouds:`"),
    ],
)
def test_a_broken_clouds_yaml_says_what_is_wrong_without_quoting_it(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        resolve_clouds_yaml_text(text, "prod", source="Secret ns/creds")
    assert text not in str(info.value)


@pytest.mark.parametrize("ca", [PEM, base64.b64encode(PEM.encode()).decode(), PEM.encode()])
def test_the_ca_of_a_kubeconfig_is_taken_as_pem_or_base64(ca: object) -> None:
    server = api_server_of(SimpleNamespace(server="https://127.0.0.1:6443/", token="t0ken", ca_data=ca))
    assert server.url == "https://127.0.0.1:6443" and server.ca_pem == PEM
    assert "t0ken" not in repr(server)


def test_ca_data_that_is_neither_pem_nor_base64_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CA data"):
        api_server_of(SimpleNamespace(server="https://k", ca_data="%%%"))


def test_the_receiver_accepts_a_node_config() -> None:
    assert check_payload(payload())["nodeName"] == "node-1"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "Other"}, "apiVersion"),
        ({"nodeName": None}, "nodeName"),
        ({"interfaces": "eth1"}, "interfaces"),
        ({"interfaces": [{"id": "p1"}]}, "interfaces[0].macAddress"),
    ],
)
def test_the_receiver_names_the_field_of_a_bad_payload(changes: dict[str, object], field: str) -> None:
    body = payload(**changes)
    if changes.get("nodeName", "") is None:
        del body["nodeName"]
    with pytest.raises(HTTPException) as info:
        check_payload(body)
    assert info.value.status_code == 422 and info.value.detail["field"] == field


def test_the_receiver_keeps_the_latest_config_per_node_and_demands_its_token() -> None:
    client = TestClient(create_receiver(token="agent-token"))
    assert client.post("/v1/node-configs", json=payload()).status_code == 401
    auth = {"Authorization": "Bearer agent-token"}
    assert client.post("/v1/node-configs", json=payload(), headers=auth).status_code == 200
    assert (
        client.post("/v1/node-configs", json=payload(providerId="openstack:///x"), headers=auth).status_code
        == 200
    )
    listed = client.get("/v1/node-configs", headers=auth).json()
    assert listed["received"] == {"node-1": 2}
    assert [item["providerId"] for item in listed["items"]] == ["openstack:///x"]


def test_a_database_error_is_told_by_the_driver_message_without_the_statement_or_its_rows() -> None:
    error = DataError(
        "INSERT INTO node_configs (cloud, payload) VALUES (%(cloud)s, %(payload)s)",
        {"cloud": "secret:ns/creds", "payload": "{...}"},
        Exception("value too long for type character varying(64)\nCONTEXT: unnamed portal"),
    )
    said = database_problem(error)
    assert said == "Exception: value too long for type character varying(64)"
    assert "INSERT" not in said and "secret:" not in said
