"""Which providers the settings name: clouds.yaml clouds, plugins, and the devcloud default."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.cloud.clock import FakeClock
from stackyard.cloud.retry import RetryPolicy
from stackyard.cloud.settings import CloudSettings
from stackyard.config import PluginProvider, Settings
from stackyard.errors import ValidationError
from stackyard.providers.openstack import CloudRuntime
from stackyard.providers.registry import build_providers, needs_devcloud

RUNTIME = CloudRuntime(policy=RetryPolicy(), clock=FakeClock())
DEVCLOUD = CloudSettings.from_mapping(
    {"auth_url": "http://127.0.0.1:5000/v3", "username": "admin", "password": "pw", "project_name": "admin"},
    source="test",
)


def _clouds_yaml(tmp_path: Path, *names: str) -> dict[str, str]:
    entries = "".join(
        f"  {name}:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      username: u\n"
        f"      password: p\n      project_name: p\n"
        for name in names
    )
    path = tmp_path / "clouds.yaml"
    path.write_text(f"clouds:\n{entries}")
    return {"OS_CLIENT_CONFIG_FILE": str(path)}


def test_nothing_configured_means_the_devcloud(tmp_path: Path) -> None:
    env = {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "missing.yaml")}
    settings = Settings(clouds=None)
    assert needs_devcloud(settings, env)
    providers = build_providers(settings, RUNTIME, devcloud=DEVCLOUD, environ=env)
    assert list(providers) == ["devcloud"]
    assert providers["devcloud"].type == "openstack"


def test_every_clouds_yaml_cloud_is_a_provider_unless_listed(tmp_path: Path) -> None:
    env = _clouds_yaml(tmp_path, "prod", "lab")
    assert not needs_devcloud(Settings(), env)
    assert sorted(build_providers(Settings(), RUNTIME, devcloud=DEVCLOUD, environ=env)) == ["lab", "prod"]
    only_lab = build_providers(Settings(clouds=("lab",)), RUNTIME, devcloud=DEVCLOUD, environ=env)
    assert list(only_lab) == ["lab"]
    assert only_lab["lab"].cloud == "lab"


def test_an_unknown_plugin_type_names_the_field(tmp_path: Path) -> None:
    settings = Settings(clouds=(), plugin_providers=(PluginProvider("x", "no-such-type", {}),))
    with pytest.raises(ValidationError) as caught:
        build_providers(settings, RUNTIME, environ={})
    assert caught.value.field == "providers.plugins[0].type"


def test_a_name_used_twice_is_rejected(tmp_path: Path) -> None:
    env = _clouds_yaml(tmp_path, "openstack")
    settings = Settings(
        openstack_provider={
            "auth_url": "http://127.0.0.1:5000/v3",
            "username": "u",
            "password": "p",
            "project_name": "p",
        }
    )
    with pytest.raises(ValidationError) as caught:
        build_providers(settings, RUNTIME, environ=env)
    assert caught.value.field == "providers.clouds"
