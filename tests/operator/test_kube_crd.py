"""The OpenstackConfig CRD (deploy/crd.yaml) on a real API server: what it accepts, refuses and prunes.

A YAML lint or the Python parser cannot show this: only the API server applies the structural schema
(422 naming the field, defaults, pruning of unknown fields, the status subresource).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.kube import CRDS, KubeApiServer, apply_crd

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAMESPACE = f"crd-{uuid.uuid4().hex[:6]}"

Create = Callable[[dict[str, Any]], httpx.Response]


def _crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((DEPLOY / "crd.yaml").read_text())
    return crd


def _sample(name: str) -> dict[str, Any]:
    """The OpenstackConfig of deploy/sample.yaml, renamed into this module's namespace."""
    documents = yaml.safe_load_all((DEPLOY / "sample.yaml").read_text())
    sample = copy.deepcopy(next(d for d in documents if d and d["kind"] == "OpenstackConfig"))
    sample["metadata"] = {"name": name, "namespace": NAMESPACE}
    return dict(sample)


def _causes(response: httpx.Response) -> dict[str, str]:
    """field -> message of a 422 Status (the API server names every field it refused)."""
    details = response.json().get("details") or {}
    return {cause.get("field", ""): cause.get("message", "") for cause in details.get("causes") or []}


@pytest.fixture(scope="module")
def http(kube: KubeApiServer) -> Iterator[httpx.Client]:
    with kube.client() as client:
        yield client


@pytest.fixture(scope="module")
def collection(http: httpx.Client) -> Iterator[str]:
    """The CRD applied and Established, and a namespace of this module's; the path of its OpenstackConfigs.

    A CRD this module created is deleted at the end (other modules' POST of the manifest then finds none);
    one applied before is left. The namespace stays: without kube-controller-manager it would only ever be
    Terminating.
    """
    crd = _crd()
    name = crd["metadata"]["name"]
    is_created = apply_crd(http, crd)
    made = http.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
    assert made.status_code == 201, made.text
    version = crd["spec"]["versions"][0]["name"]
    yield f"/apis/{crd['spec']['group']}/{version}/namespaces/{NAMESPACE}/{crd['spec']['names']['plural']}"
    if is_created:
        deleted = http.delete(f"{CRDS}/{name}")
        assert deleted.status_code == 200, deleted.text
        # The API server itself removes the remaining resources, then the CRD (its cleanup finalizer).
        deadline = time.monotonic() + 60
        while http.get(f"{CRDS}/{name}").status_code != 404:
            assert time.monotonic() < deadline, "the CRD was not gone within 60s of its delete"
            time.sleep(0.2)


@pytest.fixture
def create(http: httpx.Client, collection: str) -> Iterator[Create]:
    """POST an OpenstackConfig; whatever the server kept is deleted after the test."""
    kept: list[str] = []

    def post(body: dict[str, Any]) -> httpx.Response:
        response = http.post(collection, json=body)
        if response.status_code == 201:
            kept.append(response.json()["metadata"]["name"])
        return response

    yield post
    for name in kept:
        deleted = http.delete(f"{collection}/{name}")
        assert deleted.status_code in (200, 404), deleted.text


def test_the_sample_is_accepted_and_gets_the_schema_defaults(
    create: Create, http: httpx.Client, collection: str
) -> None:
    sample = _sample("sample")
    response = create(sample)
    assert response.status_code == 201, response.text
    stored = http.get(f"{collection}/sample").json()
    expected = copy.deepcopy(sample["spec"])
    expected["allowDown"] = False  # defaults from the schema
    expected["target"]["insecure"] = False
    assert stored["spec"] == expected
    assert stored["metadata"]["generation"] == 1


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("credentialsSecretRef",), "spec.credentialsSecretRef"),
        (("cloud",), "spec.cloud"),
        (("projectId",), "spec.projectId"),
        (("vmIds",), "spec.vmIds"),
        (("target",), "spec.target"),
        (("target", "url"), "spec.target.url"),
        (("credentialsSecretRef", "key"), "spec.credentialsSecretRef.key"),
    ],
)
def test_a_missing_required_field_is_refused_naming_it(
    create: Create, path: tuple[str, ...], field: str
) -> None:
    body = _sample(f"missing-{'-'.join(path).lower()}")
    holder = body["spec"]
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    response = create(body)
    assert response.status_code == 422, response.text
    assert "Required value" in _causes(response).get(field, ""), response.text


def test_a_spec_with_neither_subnet_id_nor_subnet_name_is_refused(create: Create) -> None:
    body = _sample("no-subnet")
    del body["spec"]["subnetName"]
    response = create(body)
    assert response.status_code == 422, response.text
    causes = _causes(response)
    assert "spec.subnetId" in causes or "spec.subnetName" in causes, response.text


@pytest.mark.parametrize(
    "bad", ["not-a-uuid", "6f1b6d0e-58c4-4a8e-9a39-3c0f1d1e2a1", "6f1b6d0e58c44a8e9a393c0f1d1e2a10x"]
)
def test_a_malformed_vm_uuid_is_refused_naming_the_field_and_value(create: Create, bad: str) -> None:
    body = _sample("bad-vm")
    body["spec"]["vmIds"].append(bad)
    response = create(body)
    assert response.status_code == 422, response.text
    # NOTE: 1.20's validator names the list, not the item (`spec.vmIds`, no `[2]`); the value says which.
    message = _causes(response).get("spec.vmIds", "")
    assert "should match" in message and bad in message, response.text


def test_an_empty_vm_list_is_refused(create: Create) -> None:
    body = _sample("no-vms")
    body["spec"]["vmIds"] = []
    response = create(body)
    assert response.status_code == 422, response.text
    assert "spec.vmIds" in _causes(response), response.text


def test_unknown_fields_are_pruned(create: Create, http: httpx.Client, collection: str) -> None:
    body = _sample("pruned")
    body["spec"]["password"] = "hunter2"  # an inline credential is dropped, never stored
    body["spec"]["target"]["headers"] = {"X-Extra": "1"}
    body["spec"]["intervals"]["turbo"] = 1
    body["extra"] = "top level"
    response = create(body)
    assert response.status_code == 201, response.text
    stored = http.get(f"{collection}/pruned").json()
    assert "password" not in stored["spec"]
    assert "headers" not in stored["spec"]["target"]
    assert "turbo" not in stored["spec"]["intervals"]
    assert "extra" not in stored
    assert stored["spec"]["cloud"] == body["spec"]["cloud"]


def test_status_is_a_subresource_that_keeps_what_the_operator_writes(
    create: Create, http: httpx.Client, collection: str
) -> None:
    body = _sample("with-status")
    body["status"] = {"lastError": "ignored on create"}
    response = create(body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert "status" not in created or not created["status"]  # the main resource cannot set status
    status = {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "observedGeneration": 1}],
        "lastSyncedAt": "2026-12-01T08:00:00Z",
        "nodes": {"n-0": {"nics": 2}},  # status keeps unknown fields (x-kubernetes-preserve-unknown-fields)
    }
    patched = http.patch(
        f"{collection}/with-status/status",
        json={"status": status},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    stored = http.get(f"{collection}/with-status").json()
    assert stored["status"] == status
    assert stored["metadata"]["generation"] == 1  # a status write is not a spec change


def test_the_server_is_kubernetes_1_20(http: httpx.Client) -> None:
    version = http.get("/version").json()
    assert (version["gitVersion"], version["major"], version["minor"]) == ("v1.20.2", "1", "20")
