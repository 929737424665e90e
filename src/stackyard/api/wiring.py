"""Build the service's per-process state from settings: providers, database, auth, limits, metrics."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from stackyard.api.app import create_app
from stackyard.api.logs import configure_logging
from stackyard.api.metrics import Metrics
from stackyard.api.state import AppState
from stackyard.auth.keystone_cache import KeystoneTokenCache
from stackyard.auth.ratelimit import RequestRateLimiter
from stackyard.auth.service import AuthService
from stackyard.auth.tokens import TokenSigner, load_or_create_secret
from stackyard.cloud.clock import SystemClock
from stackyard.cloud.identity import KeystoneIdentity
from stackyard.cloud.ratelimit import RateLimiter
from stackyard.cloud.retry import RetryPolicy
from stackyard.cloud.settings import CloudSettings
from stackyard.config import Settings, load_settings
from stackyard.db.engine import make_engine, session_factory
from stackyard.exports.imports import ImportService
from stackyard.exports.lifecycle import ExportLifecycle, parse_schedules
from stackyard.exports.service import ExportService
from stackyard.exports.storage import StorageService
from stackyard.inventory.service import InventoryService
from stackyard.jobs.celery import CeleryDispatcher, Sweeper, make_celery
from stackyard.jobs.runner import JobRunner, Periodic, default_owner
from stackyard.providers.base import Provider
from stackyard.providers.openstack import CloudRuntime
from stackyard.providers.registry import (
    build_providers,
    devcloud_cloud_settings,
    export_cloud,
    export_provider,
    identity_provider,
    inventory_ports,
    needs_devcloud,
    quota_provider,
)
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.runtime import QuotaRuntime, build_quota_runtime

_KEYSTONE_CACHE_ENTRIES = 10_000


def _quota_runtime(
    settings: Settings, providers: dict[str, Provider], sessions: sessionmaker[Session]
) -> QuotaRuntime:
    provider = quota_provider(settings, providers)
    policy = QuotaPolicy.from_settings(settings.quotas)
    # A caller waiting on an enrollment gets an answer within about apply_timeout seconds; the job
    # carries on under the full policy if the cloud did not answer in time.
    waiting = RetryPolicy(attempts=2, initial=0.5, cap=2.0, deadline=max(1.0, policy.apply_timeout))
    return build_quota_runtime(
        sessions,
        provider.service_session(),
        policy,
        inline_cloud=provider.service_session(policy=waiting),
        owner=default_owner(),
    )


def build_state(settings: Settings, *, devcloud: CloudSettings | None = None) -> AppState:
    clock = SystemClock()
    metrics = Metrics()
    runtime = CloudRuntime(
        policy=RetryPolicy.from_settings(settings.retry),
        clock=clock,
        limiter=RateLimiter(settings.rate_limits, clock=clock) if settings.rate_limits else None,
        on_call=metrics.observe_cloud_call,
        on_event=metrics.observe_retry,
    )
    providers = build_providers(settings, runtime, devcloud=devcloud)
    auth_url, verify = identity_provider(settings, providers).identity_endpoint()
    sessions = session_factory(make_engine(settings.effective_database_url))
    quota_runtime = _quota_runtime(settings, providers, sessions)
    dispatcher = CeleryDispatcher(make_celery(settings.jobs.broker_url)) if settings.jobs.broker_url else None
    cloud_for = export_cloud(providers)
    staging = settings.data_dir.expanduser() / "staging"
    exports = ExportService(sessions, cloud_for, settings.exports, dispatch=dispatcher, staging_dir=staging)
    imports = ImportService(sessions, cloud_for, dispatch=dispatcher)
    storage = StorageService(sessions, cloud_for, dispatch=dispatcher)
    lifecycle = ExportLifecycle(
        sessions,
        exports,
        cloud_for,
        export_provider(settings, providers).name,
        parse_schedules(settings.exports.schedules),
        dispatch=dispatcher,
    )
    runner = JobRunner(
        sessions,
        {
            **quota_runtime.tasks.handlers(),
            **exports.handlers(),
            **imports.handlers(),
            **storage.handlers(),
            **lifecycle.handlers(),
        },
        owner=default_owner(),
        threads=settings.jobs.threads,
        lease_seconds=settings.jobs.lease_seconds,
        cleanups={**exports.cleanups(), **imports.cleanups()},
        dispatch=dispatcher,
    )
    periodic = [
        Periodic("quota-round", settings.quotas.scheduler_interval, quota_runtime.tasks.run_round),
        Periodic("export-schedules", 60.0, lifecycle.fire_due),
    ]
    if dispatcher is not None:
        # Jobs run on `stackyard worker`; this process only publishes what is due and has no message.
        periodic.append(Periodic("job-sweep", 30.0, Sweeper(sessions, runner.kinds, dispatcher).sweep))
    secret = settings.api.secret_key or load_or_create_secret(settings.data_dir.expanduser() / "secret_key")
    auth = AuthService(
        identity=KeystoneIdentity(auth_url, verify=verify, timeout=settings.request_timeout),
        signer=TokenSigner(secret, clock),
        sessions=sessions,
        cache=KeystoneTokenCache(_KEYSTONE_CACHE_ENTRIES, clock),
        clock=clock,
        token_ttl=settings.api.token_ttl,
    )
    return AppState(
        settings=settings,
        providers=providers,
        sessions=sessions,
        auth=auth,
        limiter=RequestRateLimiter(settings.api.rate_limit, clock),
        metrics=metrics,
        clock=clock,
        runner=runner,
        quota_runtime=quota_runtime,
        exports=exports,
        imports=imports,
        storage=storage,
        lifecycle=lifecycle,
        inventory=InventoryService(sessions, inventory_ports(providers)),
        periodic=tuple(periodic),
        runs_jobs=dispatcher is None,
    )


def create_app_from_environment() -> FastAPI:
    """uvicorn's factory (`--factory`): each worker process builds its own state from the settings.

    With no provider configured, the local devcloud is the provider (the embedded default).
    """
    if not logging.getLogger().handlers:
        # A worker spawned by uvicorn (`--workers N`): it inherits none of the logging `stackyard serve`
        # set up, only uvicorn's own logger levels (from --log-level), so set up the JSON logs here.
        level = logging.getLogger("uvicorn.error").getEffectiveLevel()
        configure_logging(logging.getLevelName(level).lower())
    settings = load_settings()
    devcloud = devcloud_cloud_settings() if needs_devcloud(settings) else None
    return create_app(build_state(settings, devcloud=devcloud))
