"""Find a cloud's credentials (explicit, clouds.yaml, OS_*, stackyard config); a connection per cloud/region.

Precedence, first match wins and nothing is merged across sources:

1. explicit `CloudSettings` given by the caller;
2. a cloud named by `--cloud` (or `OS_CLOUD`) in clouds.yaml, with secure.yaml merged in by openstacksdk;
3. `OS_*` environment variables;
4. the `providers.openstack` section of stackyard's YAML config.

Every source is turned into openstacksdk's `CloudRegion` by openstacksdk's own loader; stackyard only
chooses the source, switches off openstacksdk's retries (stackyard has its own policy) and sets a timeout.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc
from openstack.config import loader
from openstack.config.cloud_region import CloudRegion
from openstack.connection import Connection

from stackyard.cloud.errormap import is_cloud_exception, redact, translate_error
from stackyard.cloud.settings import (
    PROVIDER_PREFIX,
    AuthMethod,
    CloudSettings,
    CredentialSource,
)
from stackyard.errors import ConfigError, StackyardError

# The credential types live in cloud/settings.py; they are re-exported here for callers of resolve().
__all__ = [
    "AuthMethod",
    "CloudSettings",
    "CloudSources",
    "CloudTarget",
    "ConnectionPool",
    "CredentialSource",
    "ResolvedCloud",
    "connect",
    "open_connection",
    "resolve",
    "resolve_clouds_yaml_text",
    "verify_auth",
]

_LOG = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT = 60.0
_APP_NAME = "stackyard"


# --------------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudTarget:
    """The key of a connection: a cloud name (None: the default source) and a region (None: the first)."""

    cloud: str | None = None
    region: str | None = None

    def __str__(self) -> str:
        cloud = self.cloud or "(default cloud)"
        return f"{cloud} region {self.region}" if self.region else cloud


@dataclass(frozen=True)
class ResolvedCloud:
    """openstacksdk's configuration for one cloud/region, and where its credentials came from."""

    cloud_region: CloudRegion = field(repr=False)
    name: str
    kind: CredentialSource
    source: str  # human-readable, no secrets: "clouds.yaml cloud 'prod' (/home/me/clouds.yaml)"

    @property
    def region_name(self) -> str | None:
        return self.cloud_region.get_region_name()

    @property
    def auth_url(self) -> str | None:
        auth = self.cloud_region.config.get("auth") or {}
        return str(auth["auth_url"]) if auth.get("auth_url") else None

    @property
    def verify(self) -> bool | str:
        """What TLS verification uses: True, False, or a CA bundle path."""
        verify, _cert = self.cloud_region.get_requests_verify_args()
        return verify if isinstance(verify, bool | str) else True

    @property
    def is_insecure(self) -> bool:
        """True when TLS certificates will not be verified (insecure: true or verify: false)."""
        verify, _cert = self.cloud_region.get_requests_verify_args()
        return verify is False


# NOTE: openstacksdk treats these OS_* variables as selectors, not as credentials
# (openstack/config/loader.py, OpenStackConfig._get_os_environ).
_ENV_SELECTORS = frozenset({"OS_CLOUD", "OS_REGION_NAME", "OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE"})
# Not credentials either; OS_REGION_NAME alone is kept (it is the region of the environment's cloud).
_ENV_IGNORED = frozenset({"OS_CLOUD", "OS_CLOUD_NAME", "OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE"})
_ENV_IGNORED_PREFIXES = ("OS_TEST", "OS_STD", "OS_LOG")  # test-runner variables, as openstacksdk skips


def resolve(
    explicit: CloudSettings | None = None,
    *,
    cloud: str | None = None,
    region: str | None = None,
    environ: Mapping[str, str] | None = None,
    provider: CloudSettings | None = None,
    config_files: Sequence[Path] | None = None,
    secure_files: Sequence[Path] | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> ResolvedCloud:
    """Pick the credential source by precedence and build its CloudRegion with openstacksdk's loader.

    `cloud` falls back to OS_CLOUD in `environ` (default `os.environ`); `region` overrides the source's
    region. `config_files`/`secure_files` replace openstacksdk's search path (./, ~/.config/openstack,
    /etc/openstack); OS_CLIENT_CONFIG_FILE/OS_CLIENT_SECURE_FILE in `environ` are searched first.
    Raises ConfigError when no source is configured, the cloud is unknown, or the settings are incomplete.
    """
    env = os.environ if environ is None else environ
    if request_timeout <= 0:
        raise ConfigError(f"request timeout must be positive seconds, got {request_timeout}")
    cloud_name, named_by = (cloud, "--cloud") if cloud else (env.get("OS_CLOUD") or None, "OS_CLOUD")
    if explicit is not None:
        if cloud_name:
            _LOG.info("cloud %r (%s) not used: explicit settings take precedence", cloud_name, named_by)
        resolved = _from_entry(
            "explicit", explicit.cloud_entry(), region, CredentialSource.EXPLICIT, explicit.source
        )
    elif cloud_name:
        resolved = _from_clouds_yaml(cloud_name, named_by, region, env, config_files, secure_files)
    elif env_entry := _environment_entry(env):
        name = env.get("OS_CLOUD_NAME") or "envvars"
        resolved = _from_entry(
            name, env_entry, region, CredentialSource.ENVIRONMENT, "OS_* environment variables"
        )
    elif provider is not None:
        where = f"{provider.source} ({PROVIDER_PREFIX})"
        resolved = _from_entry(
            "openstack", provider.cloud_entry(), region, CredentialSource.STACKYARD_CONFIG, where
        )
    else:
        raise ConfigError(
            "no OpenStack credentials configured: pass --cloud NAME with a clouds.yaml "
            "(convert an openrc with `stackyard config from-openrc FILE`), source an openrc to set OS_* "
            f"variables, or add a `{PROVIDER_PREFIX}` section (auth_url, username, password, project_name) "
            "to the stackyard config"
        )
    _finish(resolved, request_timeout)
    _LOG.info("cloud %s: credentials from %s", resolved.name, resolved.source)
    return resolved


def resolve_clouds_yaml_text(
    text: str, cloud: str, *, source: str, request_timeout: float = DEFAULT_REQUEST_TIMEOUT
) -> ResolvedCloud:
    """Cloud `cloud` of a clouds.yaml given as text (a Kubernetes Secret's, say), never written to disk.

    Errors name `source` and the cloud, never the file's values: the text holds credentials.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{source}: not valid YAML{at}") from None
    clouds = document.get("clouds") if isinstance(document, dict) else None
    if not isinstance(clouds, dict):
        raise ConfigError(f"{source}: expected a clouds.yaml with a top-level `clouds:` mapping")
    entry = clouds.get(cloud)
    if not isinstance(entry, dict):
        listed = ", ".join(sorted(str(name) for name in clouds)) or "none"
        raise ConfigError(f"{source}: no cloud {cloud!r}; known clouds: {listed}")
    resolved = _from_entry(cloud, dict(entry), None, CredentialSource.CLOUDS_YAML, source)
    _finish(resolved, request_timeout)
    return resolved


def _environment_entry(env: Mapping[str, str]) -> dict[str, object] | None:
    """The OS_* variables as a cloud entry, or None when only selectors (or nothing) are set."""
    keys = [
        key
        for key, value in env.items()
        if key.startswith("OS_") and not key.startswith(_ENV_IGNORED_PREFIXES) and value != ""
    ]
    if not set(keys) - _ENV_SELECTORS:
        return None
    # OS_AUTH_URL -> auth_url, as openstacksdk's own environment loader maps them; openstacksdk then
    # moves auth options into `auth`. Empty values are dropped: an empty OS_AUTH_TYPE would select the
    # "none" plugin and silently send requests without a token.
    return {key[3:].lower(): env[key] for key in keys if key not in _ENV_IGNORED}


def _new_loader(
    config_files: list[str] | None = None, secure_files: list[str] | None = None
) -> loader.OpenStackConfig:
    # NOTE: with load_envvars=True openstacksdk reads os.environ itself and adds an "envvars" cloud;
    # with load_yaml_config=True it merges clouds.yaml/secure.yaml into whatever else is given. Each
    # source turns on only its own, so nothing leaks in from the others.
    return loader.OpenStackConfig(
        config_files=config_files,
        secure_files=secure_files,
        app_name=_APP_NAME,
        load_yaml_config=config_files is not None,
        load_envvars=False,
    )


def _from_entry(
    name: str, entry: dict[str, object], region: str | None, kind: CredentialSource, source: str
) -> ResolvedCloud:
    config = _new_loader()
    if region:
        entry = {**entry, "region_name": region}
    # The loader sees the entry exactly as if it were a clouds.yaml cloud: same normalisation, same
    # auth-plugin validation, and the CloudRegion carries its real name for openstacksdk's logs.
    config.cloud_config = {"clouds": {name: entry}}
    return ResolvedCloud(_get_one(config, name, None, source), name, kind, source)


def _from_clouds_yaml(
    name: str,
    named_by: str,
    region: str | None,
    env: Mapping[str, str],
    config_files: Sequence[Path] | None,
    secure_files: Sequence[Path] | None,
) -> ResolvedCloud:
    files = [str(path) for path in config_files] if config_files is not None else list(loader.CONFIG_FILES)
    secrets = [str(path) for path in secure_files] if secure_files is not None else list(loader.SECURE_FILES)
    # NOTE: openstacksdk honours these two only when it reads os.environ; the environment is injected here.
    if env.get("OS_CLIENT_CONFIG_FILE"):
        files.insert(0, env["OS_CLIENT_CONFIG_FILE"])
    if env.get("OS_CLIENT_SECURE_FILE"):
        secrets.insert(0, env["OS_CLIENT_SECURE_FILE"])
    try:
        config = _new_loader(files, secrets)
    except sdk_exc.ConfigException as exc:
        raise ConfigError(redact(f"clouds.yaml: {exc}")) from None
    found = [path for path in (config.config_filename, config.secure_config_filename) if path]
    if not found:
        searched = ", ".join(dict.fromkeys(str(Path(path).parent) for path in files))
        raise ConfigError(
            f"cloud {name!r} ({named_by}) asked for, but no clouds.yaml was found (searched {searched}); "
            "convert an openrc with `stackyard config from-openrc FILE`"
        )
    known = config.get_cloud_names()
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"cloud {name!r} ({named_by}) is not in {' + '.join(found)}; known clouds: {listed}"
        )
    source = f"clouds.yaml cloud {name!r} ({' + '.join(found)})"
    return ResolvedCloud(_get_one(config, name, region, source), name, CredentialSource.CLOUDS_YAML, source)


def _get_one(config: loader.OpenStackConfig, name: str, region: str | None, source: str) -> CloudRegion:
    try:
        return config.get_one(name, region_name=region) if region else config.get_one(name)
    except ksa_exc.MissingRequiredOptions as exc:
        missing = ", ".join((opt.dest or opt.name).replace("-", "_") for opt in exc.options)
        raise ConfigError(f"{source}: incomplete credentials, missing {missing}") from None
    except (sdk_exc.ConfigException, ksa_exc.AuthPluginException) as exc:
        # Messages of the loader quote config values; a password could be among them.
        raise ConfigError(redact(f"{source}: {exc}")) from None


def _finish(resolved: ResolvedCloud, request_timeout: float) -> None:
    """Switch openstacksdk/keystoneauth retries off and set the per-request timeout."""
    config = resolved.cloud_region.config
    # NOTE: openstacksdk's defaults retry image, baremetal and baremetal-introspection calls 5 times on
    # 409/503 (openstack/config/defaults.json `*_status_code_retries`), and clouds.yaml may set more per
    # service; stackyard's RetryPolicy is the only one, so every such key is zeroed.
    for key in list(config):
        if key.endswith(("connect_retries", "status_code_retries")):
            config[key] = 0
    config["connect_retries"] = 0
    config["status_code_retries"] = 0
    config["api_timeout"] = request_timeout
    verify, _cert = resolved.cloud_region.get_requests_verify_args()
    if isinstance(verify, str) and not Path(verify).is_file():
        raise ConfigError(f"{resolved.source}: cacert {verify} is not a readable file")


# --------------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------------


def open_connection(resolved: ResolvedCloud) -> Connection:
    """A Connection for `resolved` (no request is sent yet); warns when TLS verification is off."""
    if resolved.is_insecure:
        _LOG.warning(
            "TLS certificate verification is OFF for cloud %s (insecure/verify: false in %s): "
            "anyone on the network path can read and change its traffic",
            resolved.name,
            resolved.source,
        )
    return Connection(config=resolved.cloud_region)


def connect(target: CloudTarget | None = None, *, sources: CloudSources | None = None) -> Connection:
    """One unpooled Connection for `target`, credentials from `sources` (default: clouds.yaml + os.environ).

    Nothing is sent yet; call `verify_auth` to fail early on bad credentials.
    """
    sources = sources if sources is not None else CloudSources()
    return open_connection(sources.resolve_target(target if target is not None else CloudTarget()))


def verify_auth(conn: Connection) -> None:
    """Authenticate now (fetch a token) so bad credentials fail here, as stackyard's CloudError tree.

    Raises Unauthorized for rejected credentials, Unavailable/Timeout when Keystone cannot be reached.
    """
    try:
        conn.authorize()
    except Exception as exc:
        if isinstance(exc, StackyardError) or not is_cloud_exception(exc):
            raise
        raise translate_error(exc, "identity") from exc


@dataclass(frozen=True, repr=False)
class CloudSources:
    """Everything `resolve` reads, bound once in an entry point; `resolve_target` is a pool's resolver."""

    explicit: CloudSettings | None = None
    environ: Mapping[str, str] | None = None
    provider: CloudSettings | None = None
    config_files: Sequence[Path] | None = None
    secure_files: Sequence[Path] | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    def resolve_target(self, target: CloudTarget) -> ResolvedCloud:
        return resolve(
            self.explicit,
            cloud=target.cloud,
            region=target.region,
            environ=self.environ,
            provider=self.provider,
            config_files=self.config_files,
            secure_files=self.secure_files,
            request_timeout=self.request_timeout,
        )

    def __repr__(self) -> str:
        # The environment holds OS_PASSWORD; only say whether it was injected.
        environ = "os.environ" if self.environ is None else "injected"
        return (
            f"CloudSources(explicit={self.explicit!r}, environ={environ}, "
            f"provider={self.provider!r}, config_files={self.config_files!r}, "
            f"secure_files={self.secure_files!r}, request_timeout={self.request_timeout!r})"
        )


class ConnectionPool:
    """One Connection per CloudTarget, made on first use and reused; safe to share between threads.

    Two threads asking for the same target get the same Connection and only one is built; building one
    target does not hold up others.
    """

    def __init__(
        self,
        resolver: Callable[[CloudTarget], ResolvedCloud],
        *,
        connect: Callable[[ResolvedCloud], Connection] = open_connection,
    ) -> None:
        self._resolver = resolver
        self._connect = connect
        self._lock = threading.Lock()  # guards the two dicts below
        self._connections: dict[CloudTarget, Connection] = {}
        self._building: dict[CloudTarget, threading.Lock] = {}

    def get(self, target: CloudTarget | None = None) -> Connection:
        target = target if target is not None else CloudTarget()
        with self._lock:
            conn = self._connections.get(target)
            if conn is not None:
                return conn
            building = self._building.setdefault(target, threading.Lock())
        with building:
            with self._lock:
                conn = self._connections.get(target)
            if conn is None:
                conn = self._connect(self._resolver(target))
                with self._lock:
                    self._connections[target] = conn
            return conn

    def targets(self) -> list[CloudTarget]:
        """The targets that have a connection now."""
        with self._lock:
            return list(self._connections)

    def close(self) -> None:
        """Close every connection made so far; the pool can be used again afterwards."""
        with self._lock:
            connections = list(self._connections.items())
            self._connections.clear()
        for _target, conn in connections:
            conn.close()  # openstacksdk's close is best-effort and does not raise

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def clouds_yaml_names(
    environ: Mapping[str, str] | None = None, config_files: Sequence[Path] | None = None
) -> list[str]:
    """The cloud names in clouds.yaml (openstacksdk's search path), empty when there is no file."""
    env = os.environ if environ is None else environ
    files = [str(path) for path in config_files] if config_files is not None else list(loader.CONFIG_FILES)
    if env.get("OS_CLIENT_CONFIG_FILE"):
        files.insert(0, env["OS_CLIENT_CONFIG_FILE"])
    try:
        config = _new_loader(files, [])
    except sdk_exc.ConfigException as exc:
        raise ConfigError(redact(f"clouds.yaml: {exc}")) from None
    if not config.config_filename:
        return []
    return sorted(config.get_cloud_names())


def open_token_connection(resolved: ResolvedCloud, token: str, project_id: str | None) -> Connection:
    """A Connection acting with a caller's own Keystone token, on the cloud/region of `resolved`.

    The token is exchanged for one scoped to `project_id` (Keystone's token method), so the cloud's
    own policy decides what the caller may see and do.
    """
    base = resolved.cloud_region
    auth = base.config.get("auth") or {}
    auth_url = str(auth.get("auth_url") or "")
    if not auth_url:
        raise ConfigError(f"{resolved.source}: no auth_url to validate caller tokens against")
    verify, cert = base.get_requests_verify_args()
    token_auth: dict[str, object] = {"auth_url": auth_url, "token": token}
    if project_id:
        token_auth["project_id"] = project_id
    try:
        region = _new_loader().get_one(
            auth_type="v3token",
            auth=token_auth,
            region_name=resolved.region_name,
            interface=base.config.get("interface") or "public",
            verify=verify,
            cert=cert,
        )
    except (sdk_exc.ConfigException, ksa_exc.AuthPluginException) as exc:
        raise ConfigError(redact(f"{resolved.source}: {exc}")) from None
    scoped = ResolvedCloud(region, resolved.name, resolved.kind, resolved.source)
    _finish(scoped, float(base.config.get("api_timeout") or DEFAULT_REQUEST_TIMEOUT))
    return Connection(config=region)
