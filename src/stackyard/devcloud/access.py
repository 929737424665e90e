"""Credentials for the devcloud: OS_* exports and a clouds.yaml, built from its generated secrets."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

from stackyard.devcloud.context import REGION, Broker
from stackyard.devcloud.state import DevcloudState, load_secrets
from stackyard.errors import DevcloudError, ValidationError

if TYPE_CHECKING:
    from stackyard.devcloud.launcher import Devcloud


@dataclass(frozen=True)
class Credentials:
    """Password credentials of one devcloud user."""

    auth_url: str
    username: str
    password: str
    project_name: str
    region_name: str = REGION
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


def credentials(cloud: Devcloud, user: str = "admin") -> Credentials:
    secrets = load_secrets(cloud.layout)
    if secrets is None:
        raise DevcloudError("the devcloud has not been set up yet: run `stackyard devcloud up`")
    auth_url = f"http://127.0.0.1:{cloud.ports.keystone}/v3"
    if user == "admin":
        return Credentials(auth_url, "admin", secrets.admin_password, "admin")
    if user == "demo":
        return Credentials(auth_url, "demo", secrets.demo_password, "demo")
    raise ValidationError("user", f"expected admin or demo, got {user!r}")


def env_exports(cloud: Devcloud, user: str = "admin") -> str:
    creds = credentials(cloud, user)
    values = {
        "OS_AUTH_URL": creds.auth_url,
        "OS_AUTH_TYPE": "password",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": creds.username,
        "OS_PASSWORD": creds.password,
        "OS_PROJECT_NAME": creds.project_name,
        "OS_USER_DOMAIN_NAME": creds.user_domain_name,
        "OS_PROJECT_DOMAIN_NAME": creds.project_domain_name,
        "OS_REGION_NAME": creds.region_name,
        "OS_INTERFACE": "public",
    }
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items())


def cloud_entry(creds: Credentials) -> dict[str, object]:
    """A clouds.yaml entry for one user's password credentials."""
    return {
        "auth": {
            "auth_url": creds.auth_url,
            "username": creds.username,
            "password": creds.password,
            "project_name": creds.project_name,
            "user_domain_name": creds.user_domain_name,
            "project_domain_name": creds.project_domain_name,
        },
        "auth_type": "password",
        "identity_api_version": 3,
        "region_name": creds.region_name,
        "interface": "public",
    }


def clouds_yaml(cloud: Devcloud) -> str:
    document = {
        "clouds": {
            "devcloud": cloud_entry(credentials(cloud, "admin")),
            "devcloud-demo": cloud_entry(credentials(cloud, "demo")),
        }
    }
    return yaml.safe_dump(document, sort_keys=False)


def notification_url(cloud: Devcloud) -> str:
    """AMQP URL of the broker the devcloud's Neutron and Nova send notifications to.

    It holds the broker's password: hand it to a consumer, never to a log.
    """
    state = DevcloudState.load(cloud.layout)
    scheme, _, rest = state.transport_url.partition("://")
    if scheme != Broker.RABBIT.value or not rest:
        raise DevcloudError(
            "the devcloud runs without a broker (a subset without compute and volume): "
            "it sends no notifications"
        )
    return f"amqp://{rest}"
