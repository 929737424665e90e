"""openstacksdk and python-swiftclient connections for tests, from the devcloud's credentials."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import openstack
import openstack.connection
import swiftclient.client

from stackyard.devcloud.access import Credentials


def sdk_connection(
    creds: Credentials, project: str | None = None, **options: object
) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=creds.auth_url,
        username=creds.username,
        password=creds.password,
        project_name=project or creds.project_name,
        user_domain_name=creds.user_domain_name,
        project_domain_name=creds.project_domain_name,
        region_name=creds.region_name,
        load_yaml_config=False,
        load_envvars=False,
        **options,
    )


def swift_connection(creds: Credentials) -> swiftclient.client.Connection:
    """An independent Swift client (python-swiftclient), to check what stackyard stored."""
    return swiftclient.client.Connection(
        authurl=creds.auth_url,
        user=creds.username,
        key=creds.password,
        auth_version="3",
        os_options={
            "project_name": creds.project_name,
            "user_domain_name": creds.user_domain_name,
            "project_domain_name": creds.project_domain_name,
            "region_name": creds.region_name,
        },
    )


@contextmanager
def scratch_container(swift: swiftclient.client.Connection, name: str) -> Iterator[str]:
    """A container for one test module, emptied and removed afterwards."""
    swift.put_container(name)
    try:
        yield name
    finally:
        for item in swift.get_container(name, full_listing=True)[1]:
            swift.delete_object(name, item["name"])
        swift.delete_container(name)
