"""`stackyard devcloud` as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import os
import shutil
import subprocess

import openstack
import pytest
import yaml
from kombu.connection import Connection

from stackyard.devcloud.launcher import Devcloud

pytestmark = pytest.mark.devcloud


def run(devcloud: Devcloud, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed in this environment"
    env = {**os.environ, "STACKYARD_DEVCLOUD_DIR": str(devcloud.layout.root)}
    return subprocess.run([exe, "devcloud", *args], capture_output=True, text=True, env=env, timeout=600)


def test_up_on_a_running_devcloud_reports_what_is_up(devcloud: Devcloud) -> None:
    result = run(devcloud, "up")
    assert result.returncode == 0, result.stderr
    assert "already running:" in result.stderr
    assert "nova-compute" in result.stderr


def test_status_lists_every_service_healthy(devcloud: Devcloud) -> None:
    result = run(devcloud, "status")
    assert result.returncode == 0, result.stdout
    for name in ("keystone", "nova-compute", "neutron-api", "glance-api", "cinder-volume", "swift-proxy"):
        line = next(line for line in result.stdout.splitlines() if f" {name} " in line)
        assert "healthy" in line
        assert "MiB" in line


def test_env_exports_work_with_openstacksdk(devcloud: Devcloud) -> None:
    result = run(devcloud, "env")
    assert result.returncode == 0
    values = {}
    for line in result.stdout.splitlines():
        assert line.startswith("export OS_")
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value.strip("'")
    conn = openstack.connect(
        auth_url=values["OS_AUTH_URL"],
        username=values["OS_USERNAME"],
        password=values["OS_PASSWORD"],
        project_name=values["OS_PROJECT_NAME"],
        user_domain_name=values["OS_USER_DOMAIN_NAME"],
        project_domain_name=values["OS_PROJECT_DOMAIN_NAME"],
        load_yaml_config=False,
        load_envvars=False,
    )
    assert conn.compute.find_flavor("m1.small") is not None
    conn.close()


def test_clouds_yaml_has_admin_and_demo(devcloud: Devcloud) -> None:
    result = run(devcloud, "clouds-yaml")
    assert result.returncode == 0
    clouds = yaml.safe_load(result.stdout)["clouds"]
    assert clouds["devcloud"]["auth"]["username"] == "admin"
    assert clouds["devcloud-demo"]["auth"]["project_name"] == "demo"
    assert clouds["devcloud"]["region_name"] == "RegionOne"


def test_notifications_url_reaches_the_broker_neutron_and_nova_notify(devcloud: Devcloud) -> None:
    result = run(devcloud, "notifications-url")
    assert result.returncode == 0, result.stderr
    key, _, value = result.stdout.strip().removeprefix("export ").partition("=")
    assert key == "STACKYARD_NOTIFICATIONS_URL" and value.strip("'").startswith("amqp://")
    with Connection(value.strip("'"), connect_timeout=5) as conn:
        # The exchanges the services publish their notifications on are there.
        for exchange in ("neutron", "nova"):
            conn.channel().exchange_declare(exchange, "topic", passive=True)


def test_logs_shows_a_service_log_and_rejects_unknown_ones(devcloud: Devcloud) -> None:
    result = run(devcloud, "logs", "keystone", "-n", "5")
    assert result.returncode == 0
    assert result.stdout.strip()
    missing = run(devcloud, "logs", "no-such-service")
    assert missing.returncode == 1
    assert "no log for 'no-such-service'" in missing.stderr


def test_unknown_service_selection_is_a_usage_error(devcloud: Devcloud) -> None:
    result = run(devcloud, "up", "--services", "identity,dns")
    assert result.returncode == 2
    assert "services: unknown service 'dns'" in result.stderr
