"""Credential resolution and the connection pool, with real openstacksdk loaders on temporary files."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from keystoneauth1.identity.generic import Password, Token
from keystoneauth1.identity.v3 import ApplicationCredential
from openstack.connection import Connection

from stackyard.cloud.connect import (
    AuthMethod,
    CloudSettings,
    CloudSources,
    CloudTarget,
    ConnectionPool,
    CredentialSource,
    ResolvedCloud,
    connect,
    resolve,
)
from stackyard.errors import ConfigError, ValidationError

ALPHA_PASSWORD = "alpha-secret-from-secure-yaml"
ENV_PASSWORD = "env-secret-pw-4711"
EXPLICIT_PASSWORD = "explicit-secret-pw-0815"
PROVIDER_PASSWORD = "provider-secret-pw-1234"

ENV = {
    "OS_AUTH_URL": "https://env.example:5000/v3",
    "OS_AUTH_TYPE": "password",
    "OS_USERNAME": "env-user",
    "OS_PASSWORD": ENV_PASSWORD,
    "OS_PROJECT_NAME": "env-project",
    "OS_USER_DOMAIN_NAME": "Default",
    "OS_PROJECT_DOMAIN_NAME": "Default",
    "OS_REGION_NAME": "EnvRegion",
    "OS_INTERFACE": "internal",
}
EXPLICIT = CloudSettings(
    auth_url="https://explicit.example/v3",
    username="explicit-user",
    password=EXPLICIT_PASSWORD,
    project_name="explicit-project",
)
PROVIDER_MAPPING: dict[str, object] = {
    "auth_url": "https://provider.example/identity/v3",
    "username": "provider-user",
    "password": PROVIDER_PASSWORD,
    "project_name": "provider-project",
    "region_name": "ProviderRegion",
}
PROVIDER = CloudSettings.from_mapping(PROVIDER_MAPPING, source="/etc/stackyard/config.yaml")


@pytest.fixture
def clouds(tmp_path: Path) -> CloudSources:
    """clouds.yaml with alpha (password in secure.yaml), beta (two regions), gamma (verify off)."""
    clouds_yaml = tmp_path / "clouds.yaml"
    secure_yaml = tmp_path / "secure.yaml"
    base_auth = {"user_domain_name": "Default", "project_domain_name": "Default"}
    clouds_yaml.write_text(
        yaml.safe_dump(
            {
                "clouds": {
                    "alpha": {
                        "auth": {
                            "auth_url": "https://alpha.example/v3",
                            "username": "alpha-user",
                            "project_name": "alpha-project",
                            **base_auth,
                        },
                        "region_name": "AlphaRegion",
                        "compute_status_code_retries": 3,
                        "connect_retries": 4,
                    },
                    "beta": {
                        "auth": {
                            "auth_url": "https://beta.example/v3",
                            "username": "beta-user",
                            "password": "beta-pw-in-clouds-yaml",
                            "project_name": "beta-project",
                            **base_auth,
                        },
                        "regions": ["R1", "R2"],
                    },
                    "gamma": {
                        "auth_type": "v3applicationcredential",
                        "auth": {
                            "auth_url": "https://gamma.example/v3",
                            "application_credential_id": "gamma-app-cred",
                            "application_credential_secret": "gamma-app-secret",
                        },
                        "verify": False,
                    },
                }
            }
        )
    )
    secure_yaml.write_text(yaml.safe_dump({"clouds": {"alpha": {"auth": {"password": ALPHA_PASSWORD}}}}))
    return CloudSources(environ={}, config_files=[clouds_yaml], secure_files=[secure_yaml])


def resolve_with(
    sources: CloudSources,
    *,
    explicit: CloudSettings | None = None,
    cloud: str | None = None,
    environ: dict[str, str] | None = None,
    provider: CloudSettings | None = None,
    region: str | None = None,
    request_timeout: float = 60.0,
) -> ResolvedCloud:
    return resolve(
        explicit,
        cloud=cloud,
        region=region,
        environ=environ if environ is not None else {},
        provider=provider,
        config_files=sources.config_files,
        secure_files=sources.secure_files,
        request_timeout=request_timeout,
    )


def auth_of(resolved: ResolvedCloud) -> dict[str, object]:
    return dict(resolved.cloud_region.config["auth"])


# -- precedence ------------------------------------------------------------------------------------

WINNERS = [
    (CredentialSource.EXPLICIT, "explicit-user"),
    (CredentialSource.CLOUDS_YAML, "alpha-user"),
    (CredentialSource.ENVIRONMENT, "env-user"),
    (CredentialSource.STACKYARD_CONFIG, "provider-user"),
]


@pytest.mark.parametrize(
    "present",
    list(itertools.product([True, False], repeat=4)),
    ids=lambda p: "".join("x" if v else "-" for v in p),
)
def test_precedence_matrix(clouds: CloudSources, present: tuple[bool, bool, bool, bool]) -> None:
    has_explicit, has_cloud, has_env, has_provider = present
    kwargs = {
        "explicit": EXPLICIT if has_explicit else None,
        "cloud": "alpha" if has_cloud else None,
        "environ": dict(ENV) if has_env else {},
        "provider": PROVIDER if has_provider else None,
    }
    winner = next((expected for expected, flag in zip(WINNERS, present, strict=True) if flag), None)
    if winner is None:
        with pytest.raises(ConfigError, match="no OpenStack credentials configured"):
            resolve_with(clouds, **kwargs)  # type: ignore[arg-type]
        return
    resolved = resolve_with(clouds, **kwargs)  # type: ignore[arg-type]
    kind, username = winner
    assert resolved.kind is kind
    assert auth_of(resolved)["username"] == username


def test_explicit_settings_take_nothing_from_clouds_yaml_or_the_environment(
    clouds: CloudSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {**ENV, "OS_CACERT": "/nonexistent/ca.pem", "OS_PROJECT_ID": "p-env"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OS_CLOUD", "alpha")
    resolved = resolve(
        EXPLICIT,
        environ=None,  # os.environ, deliberately full of OS_* here
        config_files=clouds.config_files,
        secure_files=clouds.secure_files,
    )
    config = resolved.cloud_region.config
    assert resolved.kind is CredentialSource.EXPLICIT
    assert auth_of(resolved) == {
        "auth_url": "https://explicit.example/v3",
        "username": "explicit-user",
        "password": EXPLICIT_PASSWORD,
        "user_domain_name": "Default",
        "project_name": "explicit-project",
        "project_domain_name": "Default",
    }
    assert not config.get("region_name")
    assert config.get("cacert") is None
    assert config["interface"] == "public"


def test_os_cloud_in_the_environment_selects_a_clouds_yaml_cloud(clouds: CloudSources) -> None:
    resolved = resolve_with(clouds, environ={**ENV, "OS_CLOUD": "beta"})
    assert resolved.kind is CredentialSource.CLOUDS_YAML
    assert resolved.name == "beta"
    assert auth_of(resolved)["username"] == "beta-user"


def test_cloud_argument_wins_over_os_cloud(clouds: CloudSources) -> None:
    resolved = resolve_with(clouds, cloud="alpha", environ={"OS_CLOUD": "beta"})
    assert resolved.name == "alpha"


def test_an_injected_environment_replaces_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    resolved = resolve(environ={}, provider=PROVIDER, config_files=[])
    assert resolved.kind is CredentialSource.STACKYARD_CONFIG


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    resolved = resolve(provider=PROVIDER, config_files=[])
    assert resolved.kind is CredentialSource.ENVIRONMENT
    assert resolved.name == "envvars"
    assert resolved.region_name == "EnvRegion"
    assert resolved.cloud_region.config["interface"] == "internal"


def test_secure_yaml_supplies_the_password_and_both_files_are_reported(clouds: CloudSources) -> None:
    resolved = resolve_with(clouds, cloud="alpha")
    assert auth_of(resolved)["password"] == ALPHA_PASSWORD
    assert str(clouds.config_files[0]) in resolved.source  # type: ignore[index]
    assert str(clouds.secure_files[0]) in resolved.source  # type: ignore[index]
    assert ALPHA_PASSWORD not in resolved.source


def test_environment_selectors_alone_are_not_a_source(clouds: CloudSources) -> None:
    with pytest.raises(ConfigError, match="no OpenStack credentials configured"):
        resolve_with(clouds, environ={"OS_REGION_NAME": "R1", "OS_CLIENT_CONFIG_FILE": ""})


def test_os_client_config_file_in_the_environment_is_searched(clouds: CloudSources) -> None:
    assert clouds.config_files is not None
    resolved = resolve(
        cloud="beta", environ={"OS_CLIENT_CONFIG_FILE": str(clouds.config_files[0])}, config_files=[]
    )
    assert resolved.name == "beta"


def test_unknown_cloud_lists_the_known_ones(clouds: CloudSources) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_with(clouds, cloud="prod", environ=dict(ENV), provider=PROVIDER)
    message = str(caught.value)
    assert "'prod'" in message
    assert "known clouds: alpha, beta, gamma" in message


def test_named_cloud_without_any_clouds_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no clouds\.yaml was found") as caught:
        resolve(cloud="prod", environ={}, config_files=[tmp_path / "clouds.yaml"], secure_files=[])
    assert str(tmp_path) in str(caught.value)


def test_no_source_says_how_to_configure_one() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(environ={}, config_files=[])
    message = str(caught.value)
    for hint in ("--cloud", "clouds.yaml", "OS_*", "providers.openstack", "stackyard config from-openrc"):
        assert hint in message


# -- regions ---------------------------------------------------------------------------------------


def test_region_comes_from_the_source_or_the_override(clouds: CloudSources) -> None:
    assert resolve_with(clouds, cloud="beta").region_name == "R1"
    assert resolve_with(clouds, cloud="beta", region="R2").region_name == "R2"
    assert resolve_with(clouds, environ=dict(ENV), region="Other").region_name == "Other"
    assert resolve_with(clouds, provider=PROVIDER).region_name == "ProviderRegion"
    assert resolve_with(clouds, provider=PROVIDER, region="R9").region_name == "R9"


def test_a_region_clouds_yaml_does_not_list_is_a_config_error(clouds: CloudSources) -> None:
    with pytest.raises(ConfigError, match="R9"):
        resolve_with(clouds, cloud="beta", region="R9")


# -- auth methods ----------------------------------------------------------------------------------


def test_application_credential_by_id() -> None:
    settings = CloudSettings(
        auth_url="https://keystone.example/v3",
        auth_method=AuthMethod.APPLICATION_CREDENTIAL,
        application_credential_id="ac-id",
        application_credential_secret="ac-secret",
    )
    resolved = resolve(settings, environ={})
    assert resolved.cloud_region.config["auth_type"] == "v3applicationcredential"
    assert auth_of(resolved) == {
        "auth_url": "https://keystone.example/v3",
        "application_credential_id": "ac-id",
        "application_credential_secret": "ac-secret",
    }
    assert isinstance(resolved.cloud_region.get_auth(), ApplicationCredential)


def test_application_credential_by_name_carries_its_user() -> None:
    settings = CloudSettings.from_mapping(
        {
            "auth_url": "https://keystone.example/v3",
            "application_credential_name": "ci",
            "application_credential_secret": "ac-secret",
            "username": "alice",
            "user_domain_name": "Users",
        },
        source="test",
    )
    assert settings.auth_method is AuthMethod.APPLICATION_CREDENTIAL
    resolved = resolve(provider=settings, environ={})
    assert auth_of(resolved) == {
        "auth_url": "https://keystone.example/v3",
        "application_credential_name": "ci",
        "application_credential_secret": "ac-secret",
        "username": "alice",
        "user_domain_name": "Users",
    }


def test_token_auth() -> None:
    settings = CloudSettings(
        auth_url="https://keystone.example/v3",
        auth_method=AuthMethod.TOKEN,
        token="gAAAAABtoken",
        project_id="p-1",
    )
    resolved = resolve(settings, environ={})
    assert resolved.cloud_region.config["auth_type"] == "token"
    assert auth_of(resolved) == {
        "auth_url": "https://keystone.example/v3",
        "token": "gAAAAABtoken",
        "project_id": "p-1",
        "project_domain_name": "Default",
    }
    assert isinstance(resolved.cloud_region.get_auth(), Token)


def test_password_auth_plugin() -> None:
    assert isinstance(resolve(EXPLICIT, environ={}).cloud_region.get_auth(), Password)


def test_application_credential_from_the_environment() -> None:
    resolved = resolve(
        environ={
            "OS_AUTH_TYPE": "v3applicationcredential",
            "OS_AUTH_URL": "https://keystone.example/v3",
            "OS_APPLICATION_CREDENTIAL_ID": "ac-id",
            "OS_APPLICATION_CREDENTIAL_SECRET": "ac-secret",
        }
    )
    assert resolved.cloud_region.config["auth_type"] == "v3applicationcredential"
    assert auth_of(resolved)["application_credential_id"] == "ac-id"


def test_incomplete_environment_names_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="missing auth_url"):
        resolve(environ={"OS_USERNAME": "bob", "OS_PASSWORD": ENV_PASSWORD})


def test_clouds_yaml_entry_with_an_unknown_auth_type(tmp_path: Path) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(
        yaml.safe_dump({"clouds": {"odd": {"auth_type": "bogus", "auth": {"auth_url": "http://k/v3"}}}})
    )
    with pytest.raises(ConfigError, match="bogus"):
        resolve(cloud="odd", environ={}, config_files=[path], secure_files=[])


# -- retries, timeout, TLS -------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["explicit", "clouds.yaml", "environment", "provider"])
def test_openstacksdk_retries_are_off_and_the_timeout_is_set(clouds: CloudSources, source: str) -> None:
    kwargs: dict[str, object] = {
        "explicit": {"explicit": EXPLICIT},
        "clouds.yaml": {"cloud": "alpha"},
        "environment": {"environ": dict(ENV)},
        "provider": {"provider": PROVIDER},
    }[source]
    resolved = resolve_with(clouds, request_timeout=7.5, **kwargs)  # type: ignore[arg-type]
    region = resolved.cloud_region
    for service in ("compute", "image", "baremetal", "baremetal-introspection", "network", "identity"):
        assert region.get_connect_retries(service) == 0, service
        assert region.get_status_code_retries(service) == 0, service
    assert region.get_session().timeout == 7.5


def test_the_default_request_timeout_is_60_seconds(clouds: CloudSources) -> None:
    assert resolve_with(clouds, cloud="beta").cloud_region.get_session().timeout == 60


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        resolve(EXPLICIT, environ={}, request_timeout=0)


def test_tls_verification_is_on_by_default(clouds: CloudSources) -> None:
    for resolved in (
        resolve_with(clouds, cloud="alpha"),
        resolve_with(clouds, environ=dict(ENV)),
        resolve_with(clouds, explicit=EXPLICIT),
    ):
        assert resolved.is_insecure is False
        assert resolved.cloud_region.get_requests_verify_args()[0] is True


def test_cacert_is_honoured(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = CloudSettings.from_mapping({**PROVIDER_MAPPING, "cacert": str(ca)}, source="test")
    resolved = resolve(provider=settings, environ={})
    assert resolved.cloud_region.get_requests_verify_args()[0] == str(ca)
    assert not resolved.is_insecure


def test_a_missing_cacert_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cacert"):
        resolve(environ={**ENV, "OS_CACERT": str(tmp_path / "missing.pem")})


INSECURE_SOURCES: dict[str, dict[str, object]] = {
    "explicit": {"explicit": CloudSettings(**{**PROVIDER_MAPPING, "insecure": True})},  # type: ignore[arg-type]
    "clouds.yaml verify false": {"cloud": "gamma"},
    "OS_INSECURE": {"environ": {**ENV, "OS_INSECURE": "true"}},
    "provider": {"provider": CloudSettings.from_mapping({**PROVIDER_MAPPING, "insecure": True}, source="t")},
}


@pytest.mark.parametrize("source", list(INSECURE_SOURCES))
def test_insecure_is_warned_once_per_connection_without_secrets(
    clouds: CloudSources, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kwargs = INSECURE_SOURCES[source]
    pool = ConnectionPool(lambda target: resolve_with(clouds, **kwargs))  # type: ignore[arg-type]
    first = pool.get(CloudTarget())
    assert pool.get(CloudTarget()) is first
    first.config.get_session()  # openstacksdk logs its own insecure note here; it must not leak either
    pool.close()
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    message = warnings[0].getMessage()
    assert "TLS certificate verification is OFF" in message
    assert first.config.name in message
    for secret in (ENV_PASSWORD, PROVIDER_PASSWORD, "gamma-app-secret", ALPHA_PASSWORD):
        assert secret not in caplog.text


def test_the_winning_source_is_logged(clouds: CloudSources, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stackyard.cloud.connect")
    resolve_with(clouds, cloud="alpha")
    assert "cloud alpha: credentials from clouds.yaml cloud 'alpha'" in caplog.text
    assert ALPHA_PASSWORD not in caplog.text


# -- settings validation and repr ------------------------------------------------------------------


def test_repr_redacts_every_secret() -> None:
    settings = [
        EXPLICIT,
        CloudSettings(
            auth_url="https://k.example/v3",
            auth_method=AuthMethod.TOKEN,
            token="tok-secret-value",
            project_name="p",
        ),
        CloudSettings(
            auth_url="https://k.example/v3",
            auth_method=AuthMethod.APPLICATION_CREDENTIAL,
            application_credential_id="id",
            application_credential_secret="ac-secret-value",
        ),
    ]
    for item in settings:
        text = repr(item)
        assert "***" in text
        for secret in (EXPLICIT_PASSWORD, "tok-secret-value", "ac-secret-value"):
            assert secret not in text
            assert secret not in str(item)
    assert "username='explicit-user'" in repr(EXPLICIT)
    sources = CloudSources(explicit=EXPLICIT, environ=dict(ENV), provider=PROVIDER)
    for text in (repr(sources), repr(resolve(EXPLICIT, environ={}))):
        assert EXPLICIT_PASSWORD not in text
        assert ENV_PASSWORD not in text
        assert PROVIDER_PASSWORD not in text


def test_from_mapping_reads_a_complete_section() -> None:
    assert PROVIDER.auth_method is AuthMethod.PASSWORD
    assert PROVIDER.username == "provider-user"
    assert PROVIDER.user_domain_name == "Default"
    assert PROVIDER.interface == "public"
    assert PROVIDER.insecure is False
    assert PROVIDER.source == "/etc/stackyard/config.yaml"


def test_from_mapping_infers_token_auth() -> None:
    data = {"auth_url": "https://k.example/v3", "token": "t", "project_name": "p"}
    assert CloudSettings.from_mapping(data, source="t").auth_method is AuthMethod.TOKEN


def test_auth_method_given_as_a_string_is_accepted() -> None:
    settings = CloudSettings(
        auth_url="https://k.example/v3",
        auth_method="token",  # type: ignore[arg-type]
        token="t",
        project_name="p",
    )
    assert settings.auth_method is AuthMethod.TOKEN


def without(key: str) -> dict[str, object]:
    return {k: v for k, v in PROVIDER_MAPPING.items() if k != key}


APP_CRED = {"auth_url": "https://k.example/v3", "application_credential_name": "ci"}

INVALID: list[tuple[str, object, str, str]] = [
    ("missing auth_url", without("auth_url"), "auth_url", "missing"),
    ("auth_url not a URL", {**PROVIDER_MAPPING, "auth_url": "keystone:5000"}, "auth_url", "http"),
    ("auth_url not a string", {**PROVIDER_MAPPING, "auth_url": 5000}, "auth_url", "string"),
    ("missing username", without("username"), "username", "missing"),
    ("missing password", without("password"), "password", "missing"),
    ("empty password", {**PROVIDER_MAPPING, "password": ""}, "password", "non-empty"),
    ("missing project", without("project_name"), "project_name", "project"),
    ("typo in a key", {**PROVIDER_MAPPING, "pasword": "x"}, "pasword", "unknown"),
    ("clouds.yaml key", {**PROVIDER_MAPPING, "auth_type": "password"}, "auth_type", "auth_method"),
    ("insecure as a string", {**PROVIDER_MAPPING, "insecure": "yes"}, "insecure", "true or false"),
    ("unknown interface", {**PROVIDER_MAPPING, "interface": "private"}, "interface", "public"),
    ("unknown auth method", {**PROVIDER_MAPPING, "auth_method": "saml"}, "auth_method", "password"),
    ("project id as a number", {**PROVIDER_MAPPING, "project_id": 1234}, "project_id", "quote"),
    (
        "token next to a password",
        {**PROVIDER_MAPPING, "auth_method": "password", "token": "t"},
        "token",
        "go",
    ),
    (
        "app credential without secret",
        {**APP_CRED, "username": "u"},
        "application_credential_secret",
        "secret",
    ),
    (
        "app credential name without user",
        {**APP_CRED, "application_credential_secret": "s"},
        "username",
        "user",
    ),
    (
        "app credential without id or name",
        {
            "auth_url": "https://k/v3",
            "auth_method": "v3applicationcredential",
            "application_credential_secret": "s",
        },
        "application_credential_id",
        "id",
    ),
    (
        "app credential with a project",
        {**APP_CRED, "application_credential_secret": "s", "username": "u", "project_name": "p"},
        "project_name",
        "project",
    ),
    (
        "cacert with insecure",
        {**PROVIDER_MAPPING, "insecure": True, "cacert": "/ca.pem"},
        "cacert",
        "ignored",
    ),
]


@pytest.mark.parametrize(
    ("data", "field", "words"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_from_mapping_names_the_offending_field(data: object, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CloudSettings.from_mapping(data, source="/etc/stackyard/config.yaml")
    assert caught.value.field == f"providers.openstack.{field}"
    assert words in caught.value.message
    assert "/etc/stackyard/config.yaml" in caught.value.message
    assert PROVIDER_PASSWORD not in str(caught.value)


def test_from_mapping_refuses_a_non_mapping() -> None:
    with pytest.raises(ValidationError) as caught:
        CloudSettings.from_mapping(["auth_url"], source="s")
    assert caught.value.field == "providers.openstack"


def test_a_password_in_the_auth_url_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as caught:
        CloudSettings(auth_url="ftp://bob:hunter2secret@k/v3", username="u", password="p", project_name="p")
    assert "hunter2secret" not in str(caught.value)


# -- connections -----------------------------------------------------------------------------------


class RecordingConnection(Connection):
    closed = 0

    def close(self) -> None:
        type(self).closed += 1
        super().close()


def counting_resolver(
    clouds: CloudSources, delay: float = 0.0
) -> tuple[Callable[[CloudTarget], ResolvedCloud], dict[CloudTarget, int]]:
    calls: dict[CloudTarget, int] = {}
    lock = threading.Lock()

    def resolver(target: CloudTarget) -> ResolvedCloud:
        with lock:
            calls[target] = calls.get(target, 0) + 1
        time.sleep(delay)  # keep the race window open so concurrent callers overlap
        return clouds.resolve_target(target)

    return resolver, calls


def test_pool_builds_one_connection_per_target_under_concurrency(clouds: CloudSources) -> None:
    resolver, calls = counting_resolver(clouds, delay=0.3)
    pool = ConnectionPool(resolver)
    targets = [CloudTarget("beta", "R1"), CloudTarget("beta", "R2"), CloudTarget("alpha")]
    start = threading.Barrier(24)
    got: list[tuple[CloudTarget, Connection]] = []
    got_lock = threading.Lock()

    def worker(target: CloudTarget) -> None:
        start.wait()
        conn = pool.get(target)
        with got_lock:
            got.append((target, conn))

    threads = [threading.Thread(target=worker, args=(targets[i % 3],)) for i in range(24)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = time.monotonic() - began
    assert len(got) == 24
    assert calls == {target: 1 for target in targets}
    for target in targets:
        assert len({id(conn) for t, conn in got if t == target}) == 1
    assert len({id(conn) for _, conn in got}) == 3
    # The three targets were built side by side, not one after another.
    assert elapsed < 0.8  # one after another would take at least 0.9 s
    regions = {target: conn.config.get_region_name() for target, conn in got}
    assert regions[CloudTarget("beta", "R2")] == "R2"
    pool.close()


def test_pool_reuses_connections_and_close_closes_them_all(clouds: CloudSources) -> None:
    resolver, calls = counting_resolver(clouds)
    RecordingConnection.closed = 0
    with ConnectionPool(
        resolver, connect=lambda resolved: RecordingConnection(config=resolved.cloud_region)
    ) as pool:
        first = pool.get(CloudTarget("alpha"))
        assert pool.get(CloudTarget("alpha")) is first
        pool.get(CloudTarget("beta"))
        assert set(pool.targets()) == {CloudTarget("alpha"), CloudTarget("beta")}
    assert RecordingConnection.closed == 2
    assert pool.targets() == []
    assert pool.get(CloudTarget("alpha")) is not first  # usable again after close
    assert calls[CloudTarget("alpha")] == 2
    pool.close()


def test_a_failed_build_is_not_cached(clouds: CloudSources) -> None:
    attempts = []

    def resolver(target: CloudTarget) -> ResolvedCloud:
        attempts.append(target)
        if len(attempts) == 1:
            raise ConfigError("first attempt fails")
        return clouds.resolve_target(target)

    pool = ConnectionPool(resolver)
    with pytest.raises(ConfigError):
        pool.get(CloudTarget("alpha"))
    assert pool.get(CloudTarget("alpha")).config.name == "alpha"
    pool.close()


def test_nothing_is_resolved_until_a_connection_is_asked_for() -> None:
    def resolver(target: CloudTarget) -> ResolvedCloud:
        raise AssertionError("resolved too early")

    ConnectionPool(resolver).close()


def test_connect_opens_an_unpooled_connection(clouds: CloudSources) -> None:
    conn = connect(CloudTarget("beta", "R2"), sources=clouds)
    assert conn.config.name == "beta"
    assert conn.config.get_region_name() == "R2"
    conn.close()
