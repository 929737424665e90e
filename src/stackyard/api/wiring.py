"""Build the service's per-process state from settings: providers, database, auth, limits, metrics."""

from __future__ import annotations

import logging

from fastapi import FastAPI

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
from stackyard.errors import ConfigError
from stackyard.providers.base import Provider
from stackyard.providers.openstack import CloudRuntime, OpenStackProvider
from stackyard.providers.registry import build_providers, devcloud_cloud_settings, needs_devcloud

_KEYSTONE_CACHE_ENTRIES = 10_000


def _identity_provider(settings: Settings, providers: dict[str, Provider]) -> OpenStackProvider:
    """The provider whose Keystone authenticates API callers: `api.keystone_cloud`, else the first."""
    wanted = settings.api.keystone_cloud
    if wanted is not None:
        chosen = providers.get(wanted)
        if not isinstance(chosen, OpenStackProvider):
            raise ConfigError(f"api.keystone_cloud: {wanted!r} is not a configured OpenStack provider")
        return chosen
    for name in sorted(providers):
        provider = providers[name]
        if isinstance(provider, OpenStackProvider):
            return provider
    raise ConfigError(
        "no OpenStack provider is configured, so there is no Keystone to authenticate API callers against"
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
    auth_url, verify = _identity_provider(settings, providers).identity_endpoint()
    sessions = session_factory(make_engine(settings.effective_database_url))
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
