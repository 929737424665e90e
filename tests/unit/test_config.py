"""Settings: file + environment, defaults, and validation errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.config import RetrySettings, load_settings, parse_settings
from stackyard.errors import ConfigError, ValidationError


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(environ={"HOME": str(tmp_path)})
    assert settings.retry == RetrySettings()
    assert settings.rate_limits == {}
    assert settings.openstack_provider is None


def test_file_and_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "stackyard.yaml"
    path.write_text(
        "providers:\n  openstack: {auth_url: 'http://k:5000/v3', username: u, password: p, project_name: x}\n"
        "retry: {attempts: 3, cap: 10}\nrate_limits: {compute: 5}\nrequest_timeout: 20\n"
    )
    settings = load_settings(environ={"STACKYARD_CONFIG": str(path), "STACKYARD_RETRY_DEADLINE": "90"})
    assert settings.retry == RetrySettings(attempts=3, cap=10.0, deadline=90.0)
    assert settings.rate_limits == {"compute": 5.0}
    assert settings.request_timeout == 20.0
    assert settings.openstack_provider is not None
    assert settings.openstack_provider["username"] == "u"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"retry": {"attempts": 0}}, "retry.attempts"),
        ({"retry": {"cap": "soon"}}, "retry.cap"),
        ({"retry": {"tries": 3}}, "retry.tries"),
        ({"rate_limits": {"compute": -1}}, "rate_limits.compute"),
        ({"providers": {"openstack": "yes"}}, "providers.openstack"),
        ({"request_timout": 3}, "request_timout"),
    ],
)
def test_bad_settings_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_settings(document, {}, None)
    assert caught.value.field == field


def test_named_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(environ={"STACKYARD_CONFIG": str(tmp_path / "missing.yaml")})
