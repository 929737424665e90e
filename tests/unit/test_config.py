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


def test_service_settings_and_their_embedded_defaults(tmp_path: Path) -> None:
    embedded = parse_settings({}, {"STACKYARD_DATA_DIR": str(tmp_path)}, None)
    assert embedded.is_embedded
    assert embedded.effective_database_url == f"sqlite:///{tmp_path / 'stackyard.db'}"
    assert embedded.api.cors_origins == ()
    assert embedded.clouds is None
    configured = parse_settings(
        {
            "database": {"url": "postgresql+psycopg://db/stackyard"},
            "api": {"token_ttl": 600, "rate_limit": 60, "cors_origins": ["https://portal.example.org"]},
            "providers": {"clouds": ["prod"], "plugins": [{"name": "lab", "type": "static", "options": {}}]},
            "pricing": {"price_book": "/etc/stackyard/prices.yaml"},
        },
        {"STACKYARD_SECRET_KEY": "k" * 40},
        None,
    )
    assert not configured.is_embedded
    assert configured.api.secret_key == "k" * 40
    assert configured.api.token_ttl == 600
    assert configured.clouds == ("prod",)
    assert configured.plugin_providers[0].type == "static"
    assert configured.price_book_file == Path("/etc/stackyard/prices.yaml")
    from_env = parse_settings({}, {"STACKYARD_DATABASE_URL": "postgresql+psycopg://x/y"}, None)
    assert from_env.effective_database_url == "postgresql+psycopg://x/y"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"database": {"url": "not a url"}}, "database.url"),
        ({"api": {"secret_key": "short"}}, "api.secret_key"),
        ({"api": {"token_ttl": 5}}, "api.token_ttl"),
        ({"api": {"cors_origins": "*"}}, "api.cors_origins"),
        ({"api": {"what": 1}}, "api.what"),
        ({"providers": {"clouds": "prod"}}, "providers.clouds"),
        ({"providers": {"plugins": [{"type": "static"}]}}, "providers.plugins[0].name"),
        ({"providers": {"plugins": [{"name": "x"}]}}, "providers.plugins[0].type"),
        ({"providers": {"nope": 1}}, "providers.nope"),
    ],
)
def test_bad_service_settings_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_settings(document, {}, None)
    assert caught.value.field == field


def test_inventory_settings() -> None:
    settings = parse_settings(
        {
            "inventory": {
                "cloud": "prod",
                "metadata_key": "k8s-node",
                "allow_down": True,
                "endpoints": {"agent": {"url": "https://agent.test/v1", "auth_header_env": "AGENT_AUTH"}},
                "notifications": {"url_env": "RABBIT_URL", "queue": "q", "message_ttl": 30},
            }
        },
        {},
        None,
    )
    inventory = settings.inventory
    assert (inventory.cloud, inventory.metadata_key, inventory.allow_down) == ("prod", "k8s-node", True)
    assert inventory.endpoints["agent"]["url"] == "https://agent.test/v1"
    assert inventory.notifications == {"url_env": "RABBIT_URL", "queue": "q", "message_ttl": 30}
    assert parse_settings({}, {}, None).inventory.endpoints == {}
    assert parse_settings({}, {}, None).inventory.notifications == {}


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"colour": 1}, "inventory.colour"),
        ({"allow_down": "yes"}, "inventory.allow_down"),
        ({"metadata_key": 3}, "inventory.metadata_key"),
        ({"endpoints": ["https://x"]}, "inventory.endpoints"),
        ({"notifications": "amqp://x"}, "inventory.notifications"),
    ],
)
def test_bad_inventory_settings_name_the_field(section: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_settings({"inventory": section}, {}, None)
    assert info.value.field == field
