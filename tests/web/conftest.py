"""The dashboard in a real headless Chromium, against `stackyard serve` (2 workers, PostgreSQL, devcloud)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openstack.connection
import pytest
import yaml

from stackyard.devcloud.access import Credentials, cloud_entry
from support.api_instances import DEVCLOUD, IMAGE, NETWORK
from support.api_server import ApiServer, create_api_key, run_stackyard, server_environment, write_clouds_yaml
from support.browser import Browser, Dashboard, chrome
from support.clouds import sdk_connection
from support.postgres import temporary_database

REPO = Path(__file__).resolve().parents[2]
PRICE_BOOK = REPO / "examples" / "pricebook.yaml"


@pytest.fixture(scope="session")
def dashboard(
    admin_credentials: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """`stackyard serve` with 2 workers (a session made by one worker must work on the other), on a
    PostgreSQL database of its own, serving the devcloud as its admin, with the sample price book."""
    directory = tmp_path_factory.mktemp("web")
    clouds = write_clouds_yaml(directory / "clouds.yaml", {DEVCLOUD: cloud_entry(admin_credentials)})
    config = directory / "stackyard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"keystone_cloud": DEVCLOUD, "rate_limit": 100000},
                "quotas": {"project_pattern": "webt-{student_number}", "apply_timeout": 30},
            }
        )
    )
    with temporary_database("stackyard_web") as database_url:
        env = server_environment(
            data_dir=directory / "data",
            config_file=config,
            clouds_file=clouds,
            database_url=database_url,
            extra={"STACKYARD_PRICE_BOOK": str(PRICE_BOOK)},
        )
        run_stackyard(env, "db", "upgrade")
        admin_key = create_api_key(env, "web-tests-admin")
        with ApiServer(env, directory / "serve.log", workers=2) as server:
            yield Dashboard(server.base_url, admin_key)


def _browser(dashboard: Dashboard, credentials: Credentials) -> Iterator[Browser]:
    browser = Browser(chrome(), dashboard.base_url)
    try:
        browser.sign_in(credentials.username, credentials.password, credentials.project_name)
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="session")
def admin_browser(dashboard: Dashboard, admin_credentials: Credentials) -> Iterator[Browser]:
    """Chromium signed in as the devcloud admin through the sign-in form."""
    yield from _browser(dashboard, admin_credentials)


@pytest.fixture(scope="session")
def member_browser(dashboard: Dashboard, demo_credentials: Credentials) -> Iterator[Browser]:
    """Chromium signed in as `demo`, a member of project demo."""
    yield from _browser(dashboard, demo_credentials)


@pytest.fixture(scope="session")
def admin_conn(admin_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    """Session-wide here (the root one is per module): the session fixtures below look things up with it."""
    conn = sdk_connection(admin_credentials)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def image_id(admin_conn: openstack.connection.Connection) -> str:
    return str(admin_conn.image.find_image(IMAGE, ignore_missing=False).id)


@pytest.fixture(scope="session")
def network_id(admin_conn: openstack.connection.Connection) -> str:
    return str(admin_conn.network.find_network(NETWORK, ignore_missing=False).id)
