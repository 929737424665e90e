"""Schemathesis against the served OpenAPI spec: no response is a 5xx, and every one matches its schema.

The fuzzed server is a separate one (SQLite in its own data dir, the devcloud as its only provider),
so what the fuzzer creates, changes or revokes cannot disturb the other API tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openstack.connection
import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from stackyard.devcloud.access import Credentials, cloud_entry
from support.api_client import BUILD_TIMEOUT, Api
from support.api_instances import DEVCLOUD, FLAVOR, delete_server, unique
from support.api_server import (
    ApiServer,
    create_api_key,
    server_environment,
    write_clouds_yaml,
)

pytestmark = pytest.mark.devcloud

FUZZ_PROJECTS = "fuzz-"
MAX_EXAMPLES = 15  # per operation and phase: enough to find server errors, bounded in time
REQUEST_TIMEOUT = 120
EXAMPLE_PRICE_BOOK = Path(__file__).resolve().parents[2] / "examples" / "pricebook.yaml"


@pytest.fixture(scope="module")
def fuzzed_api(admin_credentials: Credentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    directory = tmp_path_factory.mktemp("fuzzed-api")
    clouds = write_clouds_yaml(directory / "clouds.yaml", {DEVCLOUD: cloud_entry(admin_credentials)})
    config = directory / "stackyard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"keystone_cloud": DEVCLOUD, "rate_limit": 0},
                # Students the fuzzer registers get projects named fuzz-<number>, deleted afterwards.
                "quotas": {"project_pattern": f"{FUZZ_PROJECTS}{{student_number}}"},
            }
        )
    )
    env = server_environment(
        data_dir=directory / "data",
        config_file=config,
        clouds_file=clouds,
        # A cloud error must come back within the request timeout rather than be retried for minutes.
        extra={"STACKYARD_RETRY_ATTEMPTS": "2", "STACKYARD_RETRY_DEADLINE": "30"},
    )
    admin_key = create_api_key(env, "schemathesis")  # also migrates the SQLite database
    with ApiServer(env, directory / "serve.log", workers=1) as server:
        yield Api(server=server, admin_key=admin_key)


@pytest.fixture(scope="module")
def fuzzed_instance(
    admin_conn: openstack.connection.Connection,
    image_id: str,
    network_id: str,
    request: pytest.FixtureRequest,
) -> str:
    """An ACTIVE instance in the admin project for the fuzzer to read, stop, start, reboot and delete."""
    flavor = admin_conn.compute.find_flavor(FLAVOR, ignore_missing=False)
    server = admin_conn.compute.create_server(
        name=unique("sy-fuzz"), flavor_id=flavor.id, image_id=image_id, networks=[{"uuid": network_id}]
    )
    request.addfinalizer(lambda: delete_server(admin_conn, server.id))
    admin_conn.compute.wait_for_server(server, wait=BUILD_TIMEOUT)
    return str(server.id)


@pytest.fixture(scope="module")
def fuzzed_schema(
    fuzzed_api: Api,
    fuzzed_instance: str,
    admin_project_id: str,
    image_id: str,
    network_id: str,
) -> schemathesis.BaseSchema:
    with fuzzed_api.as_admin() as client:
        # A price book, so estimates and costs can succeed (the fuzzer may replace it).
        book = yaml.safe_load(EXAMPLE_PRICE_BOOK.read_text())
        assert client.put("/api/v1/pricebook", json=book).status_code == 201
    config = schemathesis.Config.from_dict(
        {
            "request-timeout": REQUEST_TIMEOUT,
            "auth": {"openapi": {"bearer": {"bearer": fuzzed_api.admin_key}}},
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "no-shrink": True,
                "database": "none",
                # Authenticate every request: generated credentials would only exercise the 401 path.
                "with-security-parameters": False,
            },
            # Random values would almost never name a provider, an instance or a flavor that exists, and
            # every request would end at a 404 or 422 before the cloud is called: mix real ones in.
            "dictionaries": {
                "providers": {"values": [DEVCLOUD]},
                "instances": {"values": [fuzzed_instance]},
                "projects": {"values": [admin_project_id]},
                "flavors": {"values": ["m1.tiny", "m1.small"]},
                "images": {"values": [image_id]},
                "networks": {"values": [network_id]},
            },
            "parameters": {
                "path.provider": {"dictionary": "providers", "probability": 0.9},
                "path.instance_id": {"dictionary": "instances", "probability": 0.6},
                "path.project_id": {"dictionary": "projects", "probability": 0.6},
                "body.type": {"dictionary": "flavors", "probability": 0.6},
                "body.instances[*].type": {"dictionary": "flavors", "probability": 0.6},
                "body.image_id": {"dictionary": "images", "probability": 0.6},
                "body.network_ids[*]": {"dictionary": "networks", "probability": 0.6},
            },
        }
    )
    return schemathesis.openapi.from_url(f"{fuzzed_api.base_url}/openapi.json", config=config)


@pytest.fixture(scope="module")
def created_servers(admin_conn: openstack.connection.Connection) -> Iterator[list[str]]:
    """Servers the fuzzer managed to create (a valid flavor, image and network by chance): deleted after."""
    created: list[str] = []
    yield created
    for server_id in created:
        delete_server(admin_conn, server_id)


@pytest.fixture(scope="module")
def fuzzed_projects(admin_conn: openstack.connection.Connection) -> Iterator[None]:
    """Projects of students the fuzzer registered: deleted after."""
    yield
    for project in admin_conn.identity.projects():
        if project.name.startswith(FUZZ_PROJECTS):
            admin_conn.identity.delete_project(project.id)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # Compatibility shim: schemathesis' lazy schemas read and rename `request.node._nodeid`, which
    # pytest 9.2 no longer has (the node id is now `_id`).
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("fuzzed_schema")


@schema.parametrize()
def test_no_server_errors_and_responses_match_the_spec(
    case: schemathesis.Case, fuzzed_api: Api, created_servers: list[str], fuzzed_projects: None
) -> None:
    response = case.call(timeout=REQUEST_TIMEOUT)
    if case.method == "POST" and case.path.endswith("/instances") and response.status_code == 202:
        created_servers.append(response.json()["id"])
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
