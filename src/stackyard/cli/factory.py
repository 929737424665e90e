"""Build gateways and services for a CLI command from settings and --cloud/--region (entry-point wiring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cli.common import CommandContext
from stackyard.cloud.clock import SystemClock
from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.connect import CloudSources, CloudTarget, connect
from stackyard.cloud.ratelimit import RateLimiter
from stackyard.cloud.retry import RetryPolicy
from stackyard.cloud.session import CloudSession, open_session
from stackyard.cloud.settings import CloudSettings
from stackyard.compute.service import InstanceService
from stackyard.config import Settings, load_settings
from stackyard.db.engine import make_engine, redacted_url, session_factory
from stackyard.db.migrate import is_up_to_date, upgrade
from stackyard.errors import ConfigError
from stackyard.exports.imports import ImportService
from stackyard.exports.lifecycle import ExportLifecycle, parse_schedules
from stackyard.exports.service import ExportService
from stackyard.inventory.service import InventoryService
from stackyard.jobs.celery import CeleryDispatcher, make_celery
from stackyard.jobs.runner import JobRunner
from stackyard.providers.base import Provider
from stackyard.providers.openstack import CloudRuntime
from stackyard.providers.registry import (
    build_providers,
    devcloud_cloud_settings,
    export_cloud,
    export_provider,
    inventory_ports,
    inventory_provider,
    needs_devcloud,
    quota_provider,
)
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.runtime import QuotaRuntime, build_quota_runtime


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy.from_settings(settings.retry)


def cloud_session(ctx: CommandContext) -> CloudSession:
    """A session on --cloud/--region with the settings' retry policy and rate limits; gateways share it."""
    settings = load_settings()
    provider = (
        CloudSettings.from_mapping(settings.openstack_provider, source=str(settings.config_file))
        if settings.openstack_provider is not None
        else None
    )
    sources = CloudSources(provider=provider, request_timeout=settings.request_timeout)
    clock = SystemClock()
    limiter = RateLimiter(settings.rate_limits, clock=clock) if settings.rate_limits else None
    conn = connect(CloudTarget(cloud=ctx.cloud, region=ctx.region), sources=sources)
    return open_session(
        conn, name=ctx.cloud or "default", policy=retry_policy(settings), clock=clock, limiter=limiter
    )


def compute_gateway(ctx: CommandContext) -> ComputeGateway:
    return ComputeGateway(cloud_session(ctx))


def instance_service(ctx: CommandContext) -> InstanceService:
    return InstanceService(compute_gateway(ctx))


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the configured database. SQLite (the embedded default) is migrated on first use;
    a server database must have been migrated with `stackyard db upgrade`."""
    engine = make_engine(settings.effective_database_url)
    if engine.dialect.name == "sqlite":
        upgrade(engine)
    elif not is_up_to_date(engine):
        raise ConfigError(
            f"the database {redacted_url(settings.effective_database_url)} is not at the current schema"
            " revision; run `stackyard db upgrade`"
        )
    return session_factory(engine)


@dataclass(frozen=True)
class QuotaCommands:
    """What the quota commands need: the database, the quota slice on its cloud, and a job runner that
    runs the jobs a command queues in the command's own process."""

    settings: Settings
    sessions: sessionmaker[Session]
    runtime: QuotaRuntime
    runner: JobRunner
    policy: QuotaPolicy


def _providers(settings: Settings) -> dict[str, Provider]:
    clock = SystemClock()
    runtime = CloudRuntime(
        policy=retry_policy(settings),
        clock=clock,
        limiter=RateLimiter(settings.rate_limits, clock=clock) if settings.rate_limits else None,
    )
    devcloud = devcloud_cloud_settings() if needs_devcloud(settings) else None
    return build_providers(settings, runtime, devcloud=devcloud)


def quota_commands() -> QuotaCommands:
    """The same cloud the API uses for student projects (`quotas.cloud`, else the identity provider;
    the local devcloud on the embedded default), with the provider's own credentials."""
    settings = load_settings()
    sessions = open_database(settings)
    providers = _providers(settings)
    policy = QuotaPolicy.from_settings(settings.quotas)
    quotas = build_quota_runtime(sessions, quota_provider(settings, providers).service_session(), policy)
    return QuotaCommands(settings, sessions, quotas, JobRunner(sessions, quotas.tasks.handlers()), policy)


@dataclass(frozen=True)
class ExportCommands:
    """The export slice for a command: jobs run in the command's process unless a broker is configured,
    in which case they are published for `stackyard worker`."""

    settings: Settings
    sessions: sessionmaker[Session]
    providers: dict[str, Provider]
    service: ExportService
    imports: ImportService
    lifecycle: ExportLifecycle
    runner: JobRunner
    default_provider: str
    dispatcher: CeleryDispatcher | None


def export_commands(stdout: BinaryIO | None = None) -> ExportCommands:
    settings = load_settings()
    sessions = open_database(settings)
    providers = _providers(settings)
    broker = settings.jobs.broker_url
    dispatcher = CeleryDispatcher(make_celery(broker)) if broker else None
    cloud_for = export_cloud(providers)
    service = ExportService(
        sessions,
        cloud_for,
        settings.exports,
        dispatch=dispatcher,
        stdout=stdout,
        staging_dir=settings.data_dir.expanduser() / "staging",
    )
    imports = ImportService(sessions, cloud_for, dispatch=dispatcher)
    default = export_provider(settings, providers).name
    schedules = parse_schedules(settings.exports.schedules)
    lifecycle = ExportLifecycle(sessions, service, cloud_for, default, schedules, dispatch=dispatcher)
    runner = JobRunner(
        sessions,
        {**service.handlers(), **imports.handlers(), **lifecycle.handlers()},
        cleanups={**service.cleanups(), **imports.cleanups()},
        lease_seconds=settings.jobs.lease_seconds,
        dispatch=dispatcher,
    )
    return ExportCommands(
        settings, sessions, providers, service, imports, lifecycle, runner, default, dispatcher
    )


@dataclass(frozen=True)
class InventoryCommands:
    settings: Settings
    service: InventoryService
    default_provider: str


def inventory_commands() -> InventoryCommands:
    settings = load_settings()
    providers = _providers(settings)
    service = InventoryService(open_database(settings), inventory_ports(providers))
    return InventoryCommands(settings, service, inventory_provider(settings, providers).name)
