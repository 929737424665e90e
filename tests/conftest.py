"""Shared fixtures: a running devcloud for integration and end-to-end tests (started once per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import openstack.connection
import pytest

from stackyard.devcloud.access import Credentials, credentials
from stackyard.devcloud.components import ALL
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root
from support.clouds import sdk_connection


def _devcloud_root() -> Path:
    return Path(os.environ.get("STACKYARD_TEST_DEVCLOUD_DIR") or default_root())


@pytest.fixture(scope="session")
def devcloud() -> Iterator[Devcloud]:
    """The full devcloud, up and healthy. A start failure errors every test that needs it (no skip)."""
    cloud = Devcloud(Layout(_devcloud_root()), report=lambda msg: print(f"devcloud: {msg}"))
    cloud.up(
        UpOptions(
            ALL,
            db_url=os.environ.get("STACKYARD_TEST_DB_URL"),
            broker_url=os.environ.get("STACKYARD_TEST_BROKER_URL"),
        )
    )
    yield cloud


@pytest.fixture(scope="session")
def admin_credentials(devcloud: Devcloud) -> Credentials:
    return credentials(devcloud, "admin")


@pytest.fixture(scope="session")
def demo_credentials(devcloud: Devcloud) -> Credentials:
    return credentials(devcloud, "demo")


@pytest.fixture(scope="module")
def admin_conn(admin_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    """openstacksdk as the devcloud's admin, to set up and check what stackyard did (one per module)."""
    conn = sdk_connection(admin_credentials)
    yield conn
    conn.close()
