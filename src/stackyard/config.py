"""stackyard settings: a YAML file plus STACKYARD_* environment overrides.

The file is STACKYARD_CONFIG or ~/.config/stackyard/config.yaml.

Built in entry points only, never at import time. Example file:

    providers:
      openstack: {auth_url: https://keystone.example.org/v3, username: ops, password: ..., project_name: ops}
      clouds: [prod, lab]                       # clouds.yaml clouds served by the API (default: all)
      plugins: [{name: lab-static, type: static, options: {}}]
    retry: {attempts: 5, initial: 2.0, multiplier: 2.0, cap: 30.0, deadline: 300}
    rate_limits: {compute: 10, network: 20}     # calls per second, per service
    request_timeout: 60
    database: {url: postgresql+psycopg://stackyard@db/stackyard}
    api: {secret_key: ..., token_ttl: 3600, rate_limit: 600, cors_origins: [], keystone_cloud: prod}
    pricing: {price_book: /etc/stackyard/prices.yaml}
    quotas:
      cloud: prod                               # provider whose admin credentials manage student projects
      domain: default                           # Keystone domain of student projects and users
      project_pattern: "stu-{student_number}"
      create_users: false                       # also create a Keystone user with the member role
      member_role: member
      enrollment_grace_days: 14                 # an enrollment expires this long after its course ends
      reduction_grace_days: 7                   # a cut blocked by usage waits this long before reclamation
      caps: {compute: {cores: 64}}              # never exceeded, whatever the courses add up to
      reclamation: {notify_url: null, stop: true, snapshot: false, delete: true}
      concurrency: 4                            # projects reconciled at once
      apply_timeout: 10                         # seconds an API call waits for the cloud before a 202
      scheduler_interval: 300                   # seconds between expiry and pending-cut checks in `serve`
    jobs:
      broker_url: null                          # or STACKYARD_BROKER_URL: run jobs on Celery workers
      threads: 2                                # jobs run at once by `serve` (or by each `stackyard worker`)
      lease_seconds: 120                        # a runner that stops reporting loses its job after this
    exports:
      cloud: null                               # provider of instances and object storage (default: first)
      segment_size: 104857600                   # bytes per Swift segment (100 MiB)
      parallel_segments: 4                      # segment uploads in flight per export
      snapshot_timeout: 7200                    # seconds a snapshot may take to become active
      per_cloud: 4                              # exports running at once against one cloud
      per_target: 2                             # exports running at once into one container or directory
      bandwidth: null                           # bytes per second per export, unless a job sets its own
      schedules:                                # run by `stackyard serve`
        - {name: nightly, cron: "0 2 * * *", target: "swift://backups/nightly/", tags: [backup],
           options: {compression: zstd}, keep_last: 3, gfs: "7d,4w,12m"}
    inventory:
      cloud: null                               # provider inventory syncs run against
      metadata_key: null                        # server metadata key holding the node name
      allow_down: false                         # DOWN ports count as ready
      endpoints:                                # where node configs are POSTed, by name
        agent: {url: "https://agent.example/v1/node-configs", timeout: 10, insecure: false,
                auth_header_env: AGENT_AUTH}    # the Authorization value is read from this variable
      notifications:                            # event mode of `inventory watch` (polling stays)
        url_env: CLOUD_NOTIFICATIONS_URL        # amqp://user:pw@rabbit:5672/ (or STACKYARD_NOTIFICATIONS_URL)
        queue: stackyard-inventory              # dedicated queue, declared by stackyard
        exchanges: [neutron, nova]
        topics: [notifications.info, versioned_notifications.info]
        message_ttl: 60                         # seconds an event waits in the queue
        queue_expires: 600                      # seconds an unused queue lives on
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from stackyard.errors import ConfigError, ValidationError

DEFAULT_CONFIG = Path("~/.config/stackyard/config.yaml")
DEFAULT_DATA_DIR = Path("~/.local/share/stackyard")


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 5
    initial: float = 2.0
    multiplier: float = 2.0
    cap: float = 30.0
    deadline: float | None = None


@dataclass(frozen=True)
class PluginProvider:
    """A provider of a plugin type (entry point group `stackyard.providers`)."""

    name: str
    type: str
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiSettings:
    secret_key: str | None = None  # signs bearer tokens; None: generated once into the data dir
    token_ttl: float = 3600.0  # bearer token lifetime (s), never past the Keystone token's expiry
    rate_limit: float = 600.0  # requests per minute per client; 0 turns limiting off
    cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are listed
    keystone_cloud: str | None = None  # provider whose Keystone authenticates API users


@dataclass(frozen=True)
class QuotaSettings:
    """How student projects are managed; `caps` and `reclamation` stay documents here and are parsed
    by the quotas slice, which owns their vocabulary."""

    cloud: str | None = None  # None: the provider that authenticates API callers
    domain: str = "default"
    project_pattern: str = "stu-{student_number}"
    create_users: bool = False
    member_role: str = "member"
    enrollment_grace_days: int = 14
    reduction_grace_days: int = 7
    caps: Mapping[str, object] = field(default_factory=dict)
    reclamation: Mapping[str, object] = field(default_factory=dict)
    concurrency: int = 4
    apply_timeout: float = 10.0
    scheduler_interval: float = 300.0


@dataclass(frozen=True)
class JobSettings:
    broker_url: str | None = None  # a Celery broker (amqp://, redis://): jobs run on `stackyard worker`
    threads: int = 2
    lease_seconds: float = 120.0


@dataclass(frozen=True)
class ExportSettings:
    cloud: str | None = None
    segment_size: int = 100 * 1024 * 1024
    parallel_segments: int = 4
    snapshot_timeout: float = 7200.0
    per_cloud: int = 4
    per_target: int = 2
    bandwidth: float | None = None
    schedules: tuple[Mapping[str, object], ...] = ()  # checked by stackyard.exports.lifecycle


@dataclass(frozen=True)
class InventorySettings:
    cloud: str | None = None  # provider syncs run against (default: the one that authenticates callers)
    metadata_key: str | None = None  # server metadata key holding the node name
    allow_down: bool = False  # DOWN ports count as ready
    endpoints: Mapping[str, Mapping[str, object]] = field(default_factory=dict)  # checked by inventory
    notifications: Mapping[str, object] = field(default_factory=dict)  # event mode; checked by inventory


@dataclass(frozen=True)
class Settings:
    config_file: Path | None = None
    openstack_provider: Mapping[str, object] | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    rate_limits: Mapping[str, float] = field(default_factory=dict)
    request_timeout: float = 60.0
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None  # None: SQLite in the data dir (the embedded default)
    clouds: tuple[str, ...] | None = None  # clouds.yaml clouds to serve; None: all of them
    plugin_providers: tuple[PluginProvider, ...] = ()
    api: ApiSettings = field(default_factory=ApiSettings)
    price_book_file: Path | None = None
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    exports: ExportSettings = field(default_factory=ExportSettings)
    inventory: InventorySettings = field(default_factory=InventorySettings)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.expanduser() / 'stackyard.db'}"

    @property
    def is_embedded(self) -> bool:
        """No database configured: SQLite and the local devcloud."""
        return self.database_url is None


def _number(value: object, name: str, *, minimum: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(name, f"expected a number, got {value!r}")
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise ValidationError(
            name, f"expected {'an integer' if integer else 'a number'}, got {value!r}"
        ) from None
    if number < minimum:
        raise ValidationError(name, f"must be at least {minimum:g}, got {number:g}")
    return number


def _section(document: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = document.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValidationError(key, f"expected a mapping, got {type(value).__name__}")
    return value


def parse_settings(document: Mapping[str, object], environ: Mapping[str, str], path: Path | None) -> Settings:
    """Validate a loaded YAML document and apply STACKYARD_* overrides; errors name the field."""
    known = {
        "providers",
        "retry",
        "rate_limits",
        "request_timeout",
        "database",
        "api",
        "pricing",
        "data_dir",
        "quotas",
        "jobs",
        "exports",
        "inventory",
    }
    for key in document:
        if key not in known:
            raise ValidationError(str(key), f"unknown setting; known: {', '.join(sorted(known))}")
    providers = _section(document, "providers")
    provider = providers.get("openstack")
    if provider is not None and not isinstance(provider, Mapping):
        raise ValidationError("providers.openstack", "expected a mapping")
    unknown_providers = set(providers) - {"openstack", "clouds", "plugins"}
    if unknown_providers:
        raise ValidationError(f"providers.{sorted(unknown_providers)[0]}", "unknown provider setting")
    retry_doc = dict(_section(document, "retry"))
    for key, env in (("attempts", "STACKYARD_RETRY_ATTEMPTS"), ("deadline", "STACKYARD_RETRY_DEADLINE")):
        if env in environ:
            retry_doc[key] = environ[env]
    unknown_retry = set(retry_doc) - {"attempts", "initial", "multiplier", "cap", "deadline"}
    if unknown_retry:
        raise ValidationError(f"retry.{sorted(unknown_retry)[0]}", "unknown retry setting")
    defaults = RetrySettings()
    retry = RetrySettings(
        attempts=int(
            _number(retry_doc.get("attempts", defaults.attempts), "retry.attempts", minimum=1, integer=True)
        ),
        initial=_number(retry_doc.get("initial", defaults.initial), "retry.initial", minimum=0),
        multiplier=_number(retry_doc.get("multiplier", defaults.multiplier), "retry.multiplier", minimum=1),
        cap=_number(retry_doc.get("cap", defaults.cap), "retry.cap", minimum=0),
        deadline=(
            None
            if retry_doc.get("deadline") in (None, "", "none")
            else _number(retry_doc["deadline"], "retry.deadline", minimum=0)
        ),
    )
    rates = {
        str(service): _number(rate, f"rate_limits.{service}", minimum=0.001)
        for service, rate in _section(document, "rate_limits").items()
    }
    timeout_raw = environ.get("STACKYARD_REQUEST_TIMEOUT", document.get("request_timeout", 60.0))
    database = _section(document, "database")
    database_url = environ.get("STACKYARD_DATABASE_URL") or database.get("url")
    if database_url is not None and (not isinstance(database_url, str) or "://" not in database_url):
        raise ValidationError("database.url", "expected a SQLAlchemy URL such as postgresql+psycopg://...")
    pricing = _section(document, "pricing")
    price_book = environ.get("STACKYARD_PRICE_BOOK") or pricing.get("price_book")
    data_dir = environ.get("STACKYARD_DATA_DIR") or document.get("data_dir") or DEFAULT_DATA_DIR
    return Settings(
        config_file=path,
        openstack_provider=dict(provider) if provider is not None else None,
        retry=retry,
        rate_limits=rates,
        request_timeout=_number(timeout_raw, "request_timeout", minimum=1),
        data_dir=Path(str(data_dir)),
        database_url=database_url or None,
        clouds=_clouds(providers.get("clouds")),
        plugin_providers=_plugins(providers.get("plugins")),
        api=_api(_section(document, "api"), environ),
        price_book_file=Path(str(price_book)).expanduser() if price_book else None,
        quotas=_quotas(_section(document, "quotas")),
        jobs=_jobs(_section(document, "jobs"), environ),
        exports=_exports(_section(document, "exports")),
        inventory=_inventory(_section(document, "inventory")),
    )


def _known(section: Mapping[str, object], name: str, settings: type) -> None:
    unknown = set(section) - {f.name for f in dataclasses.fields(settings)}
    if unknown:
        raise ValidationError(f"{name}.{sorted(unknown)[0]}", f"unknown {name} setting")


def _jobs(section: Mapping[str, object], environ: Mapping[str, str]) -> JobSettings:
    _known(section, "jobs", JobSettings)
    defaults = JobSettings()
    broker = environ.get("STACKYARD_BROKER_URL") or section.get("broker_url")
    if broker is not None and (not isinstance(broker, str) or "://" not in broker):
        raise ValidationError(
            "jobs.broker_url", "expected a broker URL such as amqp://guest@host// or redis://host"
        )
    return JobSettings(
        broker_url=broker or None,
        threads=int(
            _number(section.get("threads", defaults.threads), "jobs.threads", minimum=1, integer=True)
        ),
        lease_seconds=_number(
            section.get("lease_seconds", defaults.lease_seconds), "jobs.lease_seconds", minimum=5
        ),
    )


def _exports(section: Mapping[str, object]) -> ExportSettings:
    _known(section, "exports", ExportSettings)
    defaults = ExportSettings()
    cloud = section.get("cloud")
    if cloud is not None and not isinstance(cloud, str):
        raise ValidationError("exports.cloud", "expected a provider name")
    bandwidth = section.get("bandwidth")

    def count(key: str, default: float, minimum: float = 1) -> int:
        return int(_number(section.get(key, default), f"exports.{key}", minimum=minimum, integer=True))

    return ExportSettings(
        cloud=cloud,
        # NOTE: Swift's default min_segment_size is 1 MiB for all but the last SLO segment.
        segment_size=count("segment_size", defaults.segment_size, 1024 * 1024),
        parallel_segments=count("parallel_segments", defaults.parallel_segments),
        snapshot_timeout=_number(
            section.get("snapshot_timeout", defaults.snapshot_timeout), "exports.snapshot_timeout", minimum=1
        ),
        per_cloud=count("per_cloud", defaults.per_cloud),
        per_target=count("per_target", defaults.per_target),
        bandwidth=None if bandwidth is None else _number(bandwidth, "exports.bandwidth", minimum=1024),
        schedules=_schedules(section.get("schedules")),
    )


def _inventory(section: Mapping[str, object]) -> InventorySettings:
    _known(section, "inventory", InventorySettings)
    for name in ("cloud", "metadata_key"):
        if section.get(name) is not None and not isinstance(section.get(name), str):
            raise ValidationError(f"inventory.{name}", "expected a string")
    allow_down = section.get("allow_down", False)
    if not isinstance(allow_down, bool):
        raise ValidationError("inventory.allow_down", "expected true or false")
    endpoints = section.get("endpoints") or {}
    if not isinstance(endpoints, Mapping) or not all(isinstance(v, Mapping) for v in endpoints.values()):
        raise ValidationError("inventory.endpoints", "expected a mapping of name: {url, timeout, ...}")
    notifications = section.get("notifications") or {}
    if not isinstance(notifications, Mapping):
        raise ValidationError(
            "inventory.notifications", "expected a mapping: {url_env, queue, message_ttl, ...}"
        )
    cloud, metadata_key = section.get("cloud"), section.get("metadata_key")
    return InventorySettings(
        cloud=str(cloud) if cloud else None,
        metadata_key=str(metadata_key) if metadata_key else None,
        allow_down=allow_down,
        endpoints={str(name): dict(value) for name, value in endpoints.items()},
        notifications={str(key): value for key, value in notifications.items()},
    )


def _schedules(value: object) -> tuple[Mapping[str, object], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
        raise ValidationError(
            "exports.schedules", "expected a list of {name, cron, target, instances|tags|metadata}"
        )
    return tuple(dict(entry) for entry in value)


def _quotas(section: Mapping[str, object]) -> QuotaSettings:
    defaults = QuotaSettings()
    unknown = set(section) - {f.name for f in dataclasses.fields(QuotaSettings)}
    if unknown:
        raise ValidationError(f"quotas.{sorted(unknown)[0]}", "unknown quotas setting")

    def text(key: str, default: str) -> str:
        value = section.get(key, default)
        if not isinstance(value, str) or not value:
            raise ValidationError(f"quotas.{key}", "expected a non-empty string")
        return value

    def mapping(key: str) -> Mapping[str, object]:
        value = section.get(key) or {}
        if not isinstance(value, Mapping):
            raise ValidationError(f"quotas.{key}", "expected a mapping")
        return dict(value)

    pattern = text("project_pattern", defaults.project_pattern)
    if "{student_number}" not in pattern:
        raise ValidationError("quotas.project_pattern", "must contain {student_number}")
    cloud = section.get("cloud")
    if cloud is not None and not isinstance(cloud, str):
        raise ValidationError("quotas.cloud", "expected a provider name")
    create_users = section.get("create_users", defaults.create_users)
    if not isinstance(create_users, bool):
        raise ValidationError("quotas.create_users", "expected true or false")
    return QuotaSettings(
        cloud=cloud,
        domain=text("domain", defaults.domain),
        project_pattern=pattern,
        create_users=create_users,
        member_role=text("member_role", defaults.member_role),
        enrollment_grace_days=int(
            _number(
                section.get("enrollment_grace_days", defaults.enrollment_grace_days),
                "quotas.enrollment_grace_days",
                minimum=0,
                integer=True,
            )
        ),
        reduction_grace_days=int(
            _number(
                section.get("reduction_grace_days", defaults.reduction_grace_days),
                "quotas.reduction_grace_days",
                minimum=0,
                integer=True,
            )
        ),
        caps=mapping("caps"),
        reclamation=mapping("reclamation"),
        concurrency=int(
            _number(
                section.get("concurrency", defaults.concurrency),
                "quotas.concurrency",
                minimum=1,
                integer=True,
            )
        ),
        apply_timeout=_number(
            section.get("apply_timeout", defaults.apply_timeout), "quotas.apply_timeout", minimum=0
        ),
        scheduler_interval=_number(
            section.get("scheduler_interval", defaults.scheduler_interval),
            "quotas.scheduler_interval",
            minimum=1,
        ),
    )


def _clouds(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ValidationError("providers.clouds", "expected a list of clouds.yaml cloud names")
    return tuple(value)


def _plugins(value: object) -> tuple[PluginProvider, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError("providers.plugins", "expected a list of {name, type, options}")
    plugins: list[PluginProvider] = []
    for index, entry in enumerate(value):
        where = f"providers.plugins[{index}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(where, "expected a mapping with name, type and options")
        name, kind, options = entry.get("name"), entry.get("type"), entry.get("options") or {}
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{where}.name", "a provider needs a name")
        if not isinstance(kind, str) or not kind:
            raise ValidationError(f"{where}.type", "a provider needs a type (its entry point name)")
        if not isinstance(options, Mapping):
            raise ValidationError(f"{where}.options", "expected a mapping")
        plugins.append(PluginProvider(name, kind, dict(options)))
    return tuple(plugins)


def _api(section: Mapping[str, object], environ: Mapping[str, str]) -> ApiSettings:
    unknown = set(section) - {"secret_key", "token_ttl", "rate_limit", "cors_origins", "keystone_cloud"}
    if unknown:
        raise ValidationError(f"api.{sorted(unknown)[0]}", "unknown api setting")
    defaults = ApiSettings()
    secret = environ.get("STACKYARD_SECRET_KEY") or section.get("secret_key")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 32):
        raise ValidationError("api.secret_key", "must be a string of at least 32 characters")
    origins = section.get("cors_origins") or []
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ValidationError("api.cors_origins", "expected a list of origins")
    keystone_cloud = section.get("keystone_cloud")
    if keystone_cloud is not None and not isinstance(keystone_cloud, str):
        raise ValidationError("api.keystone_cloud", "expected a provider name")
    rate = environ.get("STACKYARD_API_RATE_LIMIT", section.get("rate_limit", defaults.rate_limit))
    return ApiSettings(
        secret_key=secret or None,
        token_ttl=_number(section.get("token_ttl", defaults.token_ttl), "api.token_ttl", minimum=60),
        rate_limit=_number(rate, "api.rate_limit", minimum=0),
        cors_origins=tuple(origins),
        keystone_cloud=keystone_cloud,
    )


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (an explicitly named one must exist) and the environment."""
    env = os.environ if environ is None else environ
    named = path or (Path(env["STACKYARD_CONFIG"]) if env.get("STACKYARD_CONFIG") else None)
    candidate = (named or DEFAULT_CONFIG).expanduser()
    if not candidate.exists():
        if named is not None:
            raise ConfigError(f"config file {candidate} does not exist")
        return parse_settings({}, env, None)
    try:
        document = yaml.safe_load(candidate.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{candidate} is not valid YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise ConfigError(f"{candidate} must hold a mapping at the top level")
    return parse_settings(document, env, candidate)
