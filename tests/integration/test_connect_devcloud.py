"""Every credential source and auth method of stackyard.cloud.connect against the devcloud's Keystone."""

from __future__ import annotations

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from openstack.connection import Connection

from stackyard.cloud.connect import (
    AuthMethod,
    CloudSettings,
    CloudSources,
    CloudTarget,
    ConnectionPool,
    CredentialSource,
    ResolvedCloud,
    open_connection,
    resolve,
    verify_auth,
)
from stackyard.devcloud.access import Credentials
from stackyard.errors import Unauthorized, Unavailable

pytestmark = pytest.mark.devcloud

FLAVORS = {"m1.tiny", "m1.small", "m1.medium", "m1.large"}


def settings_of(creds: Credentials) -> CloudSettings:
    return CloudSettings(
        auth_url=creds.auth_url,
        username=creds.username,
        password=creds.password,
        project_name=creds.project_name,
        user_domain_name=creds.user_domain_name,
        project_domain_name=creds.project_domain_name,
        region_name=creds.region_name,
    )


def environment_of(creds: Credentials) -> dict[str, str]:
    return {
        "OS_AUTH_URL": creds.auth_url,
        "OS_AUTH_TYPE": "password",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": creds.username,
        "OS_PASSWORD": creds.password,
        "OS_PROJECT_NAME": creds.project_name,
        "OS_USER_DOMAIN_NAME": creds.user_domain_name,
        "OS_PROJECT_DOMAIN_NAME": creds.project_domain_name,
        "OS_REGION_NAME": creds.region_name,
    }


def write_clouds_yaml(directory: Path, **clouds: Credentials) -> CloudSources:
    """clouds.yaml without passwords plus a secure.yaml with them, as a careful operator keeps them."""
    public: dict[str, object] = {}
    secret: dict[str, object] = {}
    for name, creds in clouds.items():
        public[name] = {
            "auth": {
                "auth_url": creds.auth_url,
                "username": creds.username,
                "project_name": creds.project_name,
                "user_domain_name": creds.user_domain_name,
                "project_domain_name": creds.project_domain_name,
            },
            "region_name": creds.region_name,
        }
        secret[name] = {"auth": {"password": creds.password}}
    (directory / "clouds.yaml").write_text(yaml.safe_dump({"clouds": public}))
    (directory / "secure.yaml").write_text(yaml.safe_dump({"clouds": secret}))
    return CloudSources(
        environ={}, config_files=[directory / "clouds.yaml"], secure_files=[directory / "secure.yaml"]
    )


def connected(resolved: ResolvedCloud, request: pytest.FixtureRequest) -> Connection:
    conn = open_connection(resolved)
    request.addfinalizer(conn.close)
    verify_auth(conn)
    return conn


def flavor_names(conn: Connection) -> set[str]:
    return {flavor.name for flavor in conn.compute.flavors()}


@pytest.mark.parametrize("source", list(CredentialSource))
def test_each_source_connects_and_lists_flavors(
    source: CredentialSource, admin_credentials: Credentials, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if source is CredentialSource.EXPLICIT:
        resolved = resolve(settings_of(admin_credentials), environ={})
    elif source is CredentialSource.CLOUDS_YAML:
        sources = write_clouds_yaml(tmp_path, devcloud=admin_credentials)
        resolved = sources.resolve_target(CloudTarget("devcloud"))
    elif source is CredentialSource.ENVIRONMENT:
        resolved = resolve(environ=environment_of(admin_credentials), config_files=[])
    else:
        section = yaml.safe_load(
            f"""
            providers:
              openstack:
                auth_url: {admin_credentials.auth_url}
                username: {admin_credentials.username}
                password: "{admin_credentials.password}"
                project_name: {admin_credentials.project_name}
                region_name: {admin_credentials.region_name}
            """
        )
        provider = CloudSettings.from_mapping(section["providers"]["openstack"], source="stackyard.yaml")
        resolved = resolve(environ={}, provider=provider, config_files=[])
    assert resolved.kind is source
    assert resolved.region_name == admin_credentials.region_name
    conn = connected(resolved, request)
    assert flavor_names(conn) >= FLAVORS


def test_application_credential_by_id_and_by_name_and_secret(
    demo_credentials: Credentials, request: pytest.FixtureRequest
) -> None:
    demo = connected(resolve(settings_of(demo_credentials), environ={}), request)
    user_id = demo.current_user_id
    assert user_id is not None
    name = f"stackyard-test-{uuid.uuid4().hex[:8]}"
    credential = demo.identity.create_application_credential(user=user_id, name=name)
    request.addfinalizer(
        lambda: demo.identity.delete_application_credential(user_id, credential, ignore_missing=True)
    )
    by_id = CloudSettings(
        auth_url=demo_credentials.auth_url,
        auth_method=AuthMethod.APPLICATION_CREDENTIAL,
        application_credential_id=credential.id,
        application_credential_secret=credential.secret,
    )
    by_name = CloudSettings(
        auth_url=demo_credentials.auth_url,
        auth_method=AuthMethod.APPLICATION_CREDENTIAL,
        application_credential_name=name,
        application_credential_secret=credential.secret,
        username=demo_credentials.username,
        user_domain_name=demo_credentials.user_domain_name,
    )
    for settings in (by_id, by_name):
        conn = connected(resolve(settings, environ={}), request)
        assert conn.current_project_id == demo.current_project_id
        assert flavor_names(conn) >= FLAVORS


def test_a_wrong_application_credential_secret_is_unauthorized(
    demo_credentials: Credentials, request: pytest.FixtureRequest
) -> None:
    demo = connected(resolve(settings_of(demo_credentials), environ={}), request)
    user_id = demo.current_user_id
    assert user_id is not None
    credential = demo.identity.create_application_credential(
        user=user_id, name=f"stackyard-test-{uuid.uuid4().hex[:8]}"
    )
    request.addfinalizer(
        lambda: demo.identity.delete_application_credential(user_id, credential, ignore_missing=True)
    )
    settings = CloudSettings(
        auth_url=demo_credentials.auth_url,
        auth_method=AuthMethod.APPLICATION_CREDENTIAL,
        application_credential_id=credential.id,
        application_credential_secret="not-the-secret-at-all",
    )
    with pytest.raises(Unauthorized) as caught:
        verify_auth(open_connection(resolve(settings, environ={})))
    assert "not-the-secret-at-all" not in str(caught.value)


def test_a_token_from_a_password_session_authenticates(
    demo_credentials: Credentials, request: pytest.FixtureRequest
) -> None:
    demo = connected(resolve(settings_of(demo_credentials), environ={}), request)
    token = demo.authorize()
    settings = CloudSettings(
        auth_url=demo_credentials.auth_url,
        auth_method=AuthMethod.TOKEN,
        token=token,
        project_name=demo_credentials.project_name,
        project_domain_name=demo_credentials.project_domain_name,
    )
    conn = connected(resolve(settings, environ={}), request)
    assert conn.current_user_id == demo.current_user_id
    assert flavor_names(conn) >= FLAVORS
    assert token not in repr(settings)


def test_a_wrong_password_is_unauthorized_and_not_echoed(demo_credentials: Credentials) -> None:
    settings = CloudSettings(
        auth_url=demo_credentials.auth_url,
        username=demo_credentials.username,
        password="wrong-password-4711",
        project_name=demo_credentials.project_name,
    )
    conn = open_connection(resolve(settings, environ={}))
    try:
        with pytest.raises(Unauthorized) as caught:
            verify_auth(conn)
    finally:
        conn.close()
    assert caught.value.status_code == 401
    assert caught.value.service == "identity"
    assert "wrong-password-4711" not in str(caught.value)


def test_an_unreachable_keystone_fails_at_once_without_openstacksdk_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    settings = CloudSettings(
        auth_url=f"http://127.0.0.1:{port}/v3", username="u", password="p", project_name="p"
    )
    conn = open_connection(resolve(settings, environ={}))
    began = time.monotonic()
    try:
        with pytest.raises(Unavailable):
            verify_auth(conn)
    finally:
        conn.close()
    assert time.monotonic() - began < 5


def test_two_clouds_at_once_from_one_pool(
    admin_credentials: Credentials, demo_credentials: Credentials, tmp_path: Path
) -> None:
    sources = write_clouds_yaml(tmp_path, devcloud=admin_credentials, **{"devcloud-demo": demo_credentials})
    targets = [CloudTarget("devcloud", admin_credentials.region_name), CloudTarget("devcloud-demo")]
    with ConnectionPool(sources.resolve_target) as pool:

        def use(target: CloudTarget) -> tuple[CloudTarget, Connection, set[str]]:
            conn = pool.get(target)
            return target, conn, flavor_names(conn)

        with ThreadPoolExecutor(max_workers=6) as executor:
            results = list(executor.map(use, targets * 3))
        assert set(pool.targets()) == set(targets)
        by_target = {target: {id(conn) for t, conn, _ in results if t == target} for target in targets}
        assert all(len(ids) == 1 for ids in by_target.values())
        admin, demo = (pool.get(target) for target in targets)
        assert admin is not demo
        assert admin.current_user_id != demo.current_user_id
        assert all(names >= FLAVORS for _, _, names in results)
