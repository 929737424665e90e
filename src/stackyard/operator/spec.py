"""An OpenstackConfig's spec, checked (pure): what to sync, where the credentials are, how often.

The API server's structural schema already refuses most bad specs; this check is the same rules once
more in Python, so a spec the schema cannot express (a subnet id *or* name) or an old CRD version
still gets a permanent, named error instead of a sync that fails later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from stackyard.errors import ValidationError
from stackyard.inventory.models import PollIntervals

GROUP = "stackyard.io"
VERSION = "v1alpha1"
PLURAL = "openstackconfigs"
KIND = "OpenstackConfig"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_INTERVAL_FIELDS = {"fast": "fast", "fastWindow": "fast_window", "slow": "slow", "error": "error"}


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class TargetSpec:
    url: str
    insecure: bool
    auth_secret: SecretKeyRef | None  # a Secret key holding the Authorization header value


@dataclass(frozen=True)
class OperatorSpec:
    credentials: SecretKeyRef  # a Secret key holding a clouds.yaml
    cloud: str
    project_id: str
    vm_ids: tuple[str, ...]
    subnet_id: str | None
    subnet_name: str | None
    target: TargetSpec
    intervals: PollIntervals
    metadata_key: str | None
    allow_down: bool


def _text(spec: Mapping[str, object], key: str, path: str, *, required: bool = True) -> str | None:
    value = spec.get(key)
    if value is None:
        if required:
            raise ValidationError(f"{path}.{key}", "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{path}.{key}", "expected a non-empty string")
    return value


def _secret_ref(value: object, path: str) -> SecretKeyRef:
    if not isinstance(value, Mapping):
        raise ValidationError(path, "expected {name, key}")
    name = _text(value, "name", path)
    key = _text(value, "key", path)
    assert name is not None and key is not None
    if not _DNS_NAME.match(name):
        raise ValidationError(f"{path}.name", f"{name!r} is not a valid Secret name")
    return SecretKeyRef(name, key)


def parse_spec(spec: Mapping[str, object]) -> OperatorSpec:
    """The spec, or a ValidationError naming the field (`spec.vmIds[2]`); credentials never inline."""
    for forbidden in ("password", "applicationCredentialSecret", "auth", "clouds"):
        if forbidden in spec:
            raise ValidationError(
                f"spec.{forbidden}", "credentials go in a Secret (spec.credentialsSecretRef)"
            )
    credentials = _secret_ref(spec.get("credentialsSecretRef"), "spec.credentialsSecretRef")
    cloud = _text(spec, "cloud", "spec")
    project_id = _text(spec, "projectId", "spec")
    assert cloud is not None and project_id is not None
    if not re.fullmatch(r"[0-9a-fA-F-]{32,36}", project_id):
        raise ValidationError("spec.projectId", "expected a Keystone project id")
    raw_vms = spec.get("vmIds")
    if not isinstance(raw_vms, list) or not raw_vms:
        raise ValidationError("spec.vmIds", "expected a non-empty list of VM ids")
    for index, vm in enumerate(raw_vms):
        if not isinstance(vm, str) or not _UUID.match(vm):
            raise ValidationError(f"spec.vmIds[{index}]", f"{vm!r} is not a UUID")
    subnet_id = _text(spec, "subnetId", "spec", required=False)
    subnet_name = _text(spec, "subnetName", "spec", required=False)
    if subnet_id is None and subnet_name is None:
        raise ValidationError("spec.subnetId", "give spec.subnetId or spec.subnetName")
    if subnet_id is not None and not _UUID.match(subnet_id):
        raise ValidationError("spec.subnetId", f"{subnet_id!r} is not a UUID")
    raw_target = spec.get("target")
    if not isinstance(raw_target, Mapping):
        raise ValidationError("spec.target", "expected {url, insecure, authSecretRef}")
    url = _text(raw_target, "url", "spec.target")
    assert url is not None
    if not url.startswith(("http://", "https://")):
        raise ValidationError("spec.target.url", "expected an http(s) URL")
    insecure = raw_target.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ValidationError("spec.target.insecure", "expected true or false")
    auth = raw_target.get("authSecretRef")
    target = TargetSpec(
        url, insecure, None if auth is None else _secret_ref(auth, "spec.target.authSecretRef")
    )
    raw_intervals = spec.get("intervals") or {}
    if not isinstance(raw_intervals, Mapping):
        raise ValidationError("spec.intervals", "expected {fast, fastWindow, slow, error, pendingRetries}")
    values: dict[str, float | int] = {}
    for key, name in _INTERVAL_FIELDS.items():
        if key in raw_intervals:
            value = raw_intervals[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValidationError(f"spec.intervals.{key}", "expected positive seconds")
            values[name] = float(value)
    if "pendingRetries" in raw_intervals:
        retries = raw_intervals["pendingRetries"]
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValidationError("spec.intervals.pendingRetries", "expected a whole number ≥ 0")
        values["pending_retries"] = retries
    allow_down = spec.get("allowDown", False)
    if not isinstance(allow_down, bool):
        raise ValidationError("spec.allowDown", "expected true or false")
    return OperatorSpec(
        credentials=credentials,
        cloud=cloud,
        project_id=project_id,
        vm_ids=tuple(str(vm) for vm in raw_vms),
        subnet_id=subnet_id,
        subnet_name=subnet_name if subnet_id is None else None,
        target=target,
        intervals=PollIntervals(**values),  # type: ignore[arg-type]
        metadata_key=_text(spec, "metadataKey", "spec", required=False),
        allow_down=allow_down,
    )
