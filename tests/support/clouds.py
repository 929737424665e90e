"""openstacksdk connections for tests, from the devcloud's credentials (no clouds.yaml, no OS_*)."""

from __future__ import annotations

import openstack
import openstack.connection

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
