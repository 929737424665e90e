"""OpenstackConfig specs checked field by field, and the status a sync's outcome gives."""

from __future__ import annotations

import copy
import pathlib
from datetime import UTC, datetime

import pytest
import yaml

from stackyard.cloud.models import Subnet
from stackyard.errors import ValidationError
from stackyard.inventory.service import NodeOutcome, NodeState, SyncResult
from stackyard.operator.spec import parse_spec
from stackyard.operator.status import status_of_error, status_of_result

VM = "6f1b6d0e-58c4-4a8e-9a39-3c0f1d1e2a10"
SPEC: dict[str, object] = {
    "credentialsSecretRef": {"name": "cloud-credentials", "key": "clouds.yaml"},
    "cloud": "prod",
    "projectId": "0123456789abcdef0123456789abcdef",
    "vmIds": [VM],
    "subnetName": "storage",
    "target": {"url": "https://agent.example/v1", "authSecretRef": {"name": "agent", "key": "token"}},
    "intervals": {"fast": 10, "slow": 300, "pendingRetries": 3},
    "metadataKey": "k8s-node",
}


def test_a_good_spec_is_read_with_its_defaults() -> None:
    spec = parse_spec(SPEC)
    assert spec.credentials.name == "cloud-credentials" and spec.vm_ids == (VM,)
    assert (spec.subnet_id, spec.subnet_name) == (None, "storage")
    assert spec.target.auth_secret is not None and spec.target.auth_secret.key == "token"
    assert not spec.target.insecure and not spec.allow_down
    assert (spec.intervals.fast, spec.intervals.slow, spec.intervals.error) == (10, 300, 30)
    assert spec.intervals.pending_retries == 3


def with_change(path: tuple[str, ...], value: object) -> dict[str, object]:
    spec = copy.deepcopy(SPEC)
    node: dict[str, object] = spec
    for key in path[:-1]:
        node = node[key]  # type: ignore[assignment]
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("credentialsSecretRef",), None, "spec.credentialsSecretRef"),
        (("credentialsSecretRef", "name"), "Not_A_Name", "spec.credentialsSecretRef.name"),
        (("password",), "hunter2", "spec.password"),
        (("projectId",), "demo", "spec.projectId"),
        (("vmIds",), [], "spec.vmIds"),
        (("vmIds",), [VM, "web-1"], "spec.vmIds[1]"),
        (("subnetName",), None, "spec.subnetId"),
        (("subnetId",), "not-a-uuid", "spec.subnetId"),
        (("target", "url"), "ftp://x", "spec.target.url"),
        (("target", "insecure"), "yes", "spec.target.insecure"),
        (("intervals", "fast"), 0, "spec.intervals.fast"),
        (("intervals", "pendingRetries"), -1, "spec.intervals.pendingRetries"),
        (("allowDown",), "no", "spec.allowDown"),
    ],
)
def test_bad_specs_name_the_field(path: tuple[str, ...], value: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_spec(with_change(path, value))
    assert info.value.field == field


SUBNET = Subnet("sub", "storage", "10.0.0.0/24", None, "net", 1500)
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 1, 8, 5, tzinfo=UTC)


def outcome(*states: NodeState) -> SyncResult:
    nodes = tuple(
        NodeOutcome(f"n-{i}", f"vm-{i}", s, 2, "why" if s is NodeState.FAILED else None)
        for i, s in enumerate(states)
    )
    return SyncResult(SUBNET, nodes, (), (), 0, T0)


def conditions(status: dict[str, object]) -> dict[str, dict[str, object]]:
    listed = status["conditions"]
    assert isinstance(listed, list)
    return {str(c["type"]): c for c in listed}


def test_ready_when_every_node_is_in_sync_and_transition_times_move_only_on_change() -> None:
    first = status_of_result(outcome(NodeState.PUSHED, NodeState.UNCHANGED), generation=3, now=T0)
    ready = conditions(first)["Ready"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Synced", 3)
    assert conditions(first)["Degraded"]["status"] == "False"
    assert first["nodes"] == [
        {"node": "n-0", "instanceId": "vm-0", "interfaces": 2, "state": "pushed"},
        {"node": "n-1", "instanceId": "vm-1", "interfaces": 2, "state": "unchanged"},
    ]
    previous = first["conditions"]
    assert isinstance(previous, list)
    again = status_of_result(outcome(NodeState.UNCHANGED), generation=3, now=T1, previous=previous)
    assert conditions(again)["Ready"]["lastTransitionTime"] == "2026-12-01T08:00:00Z"  # no change
    failed = status_of_result(outcome(NodeState.FAILED), generation=4, now=T1, previous=previous)
    assert conditions(failed)["Ready"]["status"] == "False"
    assert conditions(failed)["Ready"]["lastTransitionTime"] == "2026-12-01T08:05:00Z"
    assert conditions(failed)["Degraded"]["reason"] == "PushFailed" and failed["lastError"] == "n-0: why"


def test_an_error_before_any_sync_is_degraded_with_its_reason() -> None:
    status = status_of_error("InvalidSpec", "spec.vmIds[1]: 'web-1' is not a UUID", generation=2, now=T0)
    assert conditions(status)["Degraded"]["reason"] == "InvalidSpec"
    assert conditions(status)["Ready"]["status"] == "False" and "vmIds[1]" in str(status["lastError"])


def test_the_sample_custom_resource_and_the_crd_agree_with_the_parser() -> None:
    deploy = pathlib.Path(__file__).parents[3] / "deploy"
    documents = list(yaml.safe_load_all((deploy / "sample.yaml").read_text()))
    sample = next(d for d in documents if d["kind"] == "OpenstackConfig")
    assert parse_spec(sample["spec"]).subnet_name == "storage"
    crd = yaml.safe_load((deploy / "crd.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(schema["required"]) == {"credentialsSecretRef", "cloud", "projectId", "vmIds", "target"}
    assert set(schema["properties"]) >= set(SPEC)  # every field the parser reads is in the schema
    assert crd["spec"]["group"] == "stackyard.io" and version["name"] == "v1alpha1"
