"""The REST API over real HTTP: `stackyard serve` (2 workers) on PostgreSQL, the devcloud and a dead cloud."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openstack.connection
import pytest
import yaml

from stackyard.devcloud.access import Credentials, cloud_entry
from support.api_client import Api, Credential, auth_headers, wait_for_status
from support.api_instances import (
    BROKEN,
    DEVCLOUD,
    IMAGE,
    NETWORK,
    CreatedInstance,
    create_instance,
    instance_body,
)
from support.api_server import (
    ApiServer,
    create_api_key,
    free_port,
    run_stackyard,
    server_environment,
    write_clouds_yaml,
)
from support.clouds import sdk_connection
from support.postgres import temporary_database
from support.receiver import Receiver


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL, dropped at the end (unreachable: the tests fail)."""
    with temporary_database("stackyard_api") as url:
        yield url


@pytest.fixture(scope="session")
def api_metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server's workers write their metric samples (one file per worker process)."""
    return tmp_path_factory.mktemp("api-metrics")


@pytest.fixture(scope="session")
def inventory_receiver() -> Iterator[Receiver]:
    """The external API the served inventory pushes to (settings endpoint `receiver`)."""
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def api(
    admin_credentials: Credentials,
    pg_database_url: str,
    api_metrics_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    inventory_receiver: Receiver,
) -> Iterator[Api]:
    """The API with 2 workers on PostgreSQL, serving the devcloud (as admin) and `broken`, a cloud whose
    Keystone port is closed; retries are cut to one attempt within 5 s so failures come back fast."""
    directory = tmp_path_factory.mktemp("api")
    dead = Credentials(
        auth_url=f"http://127.0.0.1:{free_port()}/v3",
        username="nobody",
        password="not-a-password",
        project_name="nowhere",
    )
    clouds = write_clouds_yaml(
        directory / "clouds.yaml", {DEVCLOUD: cloud_entry(admin_credentials), BROKEN: cloud_entry(dead)}
    )
    config = directory / "stackyard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"keystone_cloud": DEVCLOUD, "rate_limit": 100000},
                # Student projects of the API tests are named apit-<number>; quotas.cloud is the devcloud.
                "quotas": {"project_pattern": "apit-{student_number}", "apply_timeout": 30},
                "inventory": {
                    "endpoints": {
                        "receiver": {
                            "url": inventory_receiver.url,
                            "auth_header_env": "STACKYARD_TEST_AGENT_AUTH",
                        }
                    }
                },
            }
        )
    )
    env = server_environment(
        data_dir=directory / "data",
        config_file=config,
        clouds_file=clouds,
        database_url=pg_database_url,
        extra={
            "STACKYARD_RETRY_ATTEMPTS": "1",
            "STACKYARD_RETRY_DEADLINE": "5",
            "STACKYARD_TEST_AGENT_AUTH": "Bearer api-tests-agent",
            "PROMETHEUS_MULTIPROC_DIR": str(api_metrics_dir),
        },
    )
    # `serve` refuses a server database that is not at the current revision.
    run_stackyard(env, "db", "upgrade")
    admin_key = create_api_key(env, "api-tests-admin")
    with ApiServer(env, directory / "serve.log", workers=2) as server:
        yield Api(server=server, admin_key=admin_key)


# -- callers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def admin_token(api: Api, admin_credentials: Credentials) -> str:
    """A bearer token for the devcloud admin (POST /api/v1/auth/tokens)."""
    return api.token_for(admin_credentials)


@pytest.fixture(scope="session")
def demo_token(api: Api, demo_credentials: Credentials) -> str:
    """A bearer token for the demo user, a member of project demo."""
    return api.token_for(demo_credentials)


@pytest.fixture(scope="session")
def admin_conn(admin_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    """The SDK as the devcloud admin: lookups, and cleanup that works even if the API does not."""
    conn = sdk_connection(admin_credentials)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def demo_conn(demo_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    conn = sdk_connection(demo_credentials)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def demo_keystone_token(demo_conn: openstack.connection.Connection) -> str:
    """A Keystone token of the demo user, scoped to project demo, straight from Keystone."""
    token = demo_conn.auth_token
    assert isinstance(token, str) and token
    return token


@pytest.fixture(scope="session")
def demo_project_id(demo_conn: openstack.connection.Connection) -> str:
    project_id = demo_conn.current_project_id
    assert isinstance(project_id, str) and project_id
    return project_id


@pytest.fixture(scope="session")
def admin_project_id(admin_conn: openstack.connection.Connection) -> str:
    project_id = admin_conn.current_project_id
    assert isinstance(project_id, str) and project_id
    return project_id


@pytest.fixture(scope="session")
def member_api_key(api: Api, demo_project_id: str) -> str:
    """An API key with the member role on project demo, made by an admin through the API."""
    with api.as_admin() as client:
        response = client.post(
            "/api/v1/api-keys", json={"name": "demo-member", "role": "member", "project_id": demo_project_id}
        )
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    assert isinstance(key, str)
    return key


@pytest.fixture
def admin_client(api: Api, admin_token: str) -> Iterator[httpx.Client]:
    with api.client(auth_headers(Credential.BEARER, admin_token)) as client:
        yield client


@pytest.fixture
def demo_client(api: Api, demo_token: str) -> Iterator[httpx.Client]:
    with api.client(auth_headers(Credential.BEARER, demo_token)) as client:
        yield client


# -- the devcloud's catalog, and instances ------------------------------------------------------------


@pytest.fixture(scope="session")
def image_id(admin_conn: openstack.connection.Connection) -> str:
    return str(admin_conn.image.find_image(IMAGE, ignore_missing=False).id)


@pytest.fixture(scope="session")
def network_id(admin_conn: openstack.connection.Connection) -> str:
    return str(admin_conn.network.find_network(NETWORK, ignore_missing=False).id)


@pytest.fixture(scope="session")
def admin_instance(
    api: Api,
    admin_token: str,
    admin_conn: openstack.connection.Connection,
    image_id: str,
    network_id: str,
    request: pytest.FixtureRequest,
) -> CreatedInstance:
    """One ACTIVE instance in the admin project, created by the admin's bearer token through the API."""
    with api.client(auth_headers(Credential.BEARER, admin_token)) as client:
        response = create_instance(
            client, request, admin_conn, instance_body(image_id, network_id, tags=["api-tests"])
        )
        assert response.status_code == 202, response.text
        instance_id = str(response.json()["id"])
        active = wait_for_status(client, DEVCLOUD, instance_id, "ACTIVE")
    return CreatedInstance(
        id=instance_id,
        create_status=response.status_code,
        create_headers=dict(response.headers),
        create_body=response.json(),
        active=active,
    )
