"""What the app's routes share within one worker process, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from stackyard.api.metrics import Metrics
from stackyard.auth.ratelimit import RequestRateLimiter
from stackyard.auth.service import AuthService
from stackyard.cloud.clock import Clock
from stackyard.config import Settings
from stackyard.errors import ConfigError
from stackyard.jobs.runner import JobRunner, Periodic
from stackyard.providers.base import Provider
from stackyard.quotas.runtime import QuotaRuntime


@dataclass
class AppState:
    """Per process: nothing here is state that replicas must share (that lives in the database)."""

    settings: Settings
    providers: dict[str, Provider]
    sessions: sessionmaker[Session]
    auth: AuthService
    limiter: RequestRateLimiter
    metrics: Metrics
    clock: Clock
    runner: JobRunner
    quota_runtime: QuotaRuntime | None = None
    periodic: tuple[Periodic, ...] = ()

    @property
    def quotas(self) -> QuotaRuntime:
        if self.quota_runtime is None:
            raise ConfigError("quotas by enrollment need an OpenStack provider (quotas.cloud)")
        return self.quota_runtime

    def start_background(self) -> None:
        """The job runner and periodic rounds; started by the app's lifespan, never by building state."""
        self.runner.start()
        for task in self.periodic:
            task.start()

    def close(self) -> None:
        for task in self.periodic:
            task.stop()
        self.runner.stop()
        for provider in self.providers.values():
            provider.close()


def app_state(request: Request) -> AppState:
    state = request.app.state.stackyard
    if not isinstance(state, AppState):
        raise RuntimeError("the app was not built by stackyard.api.app.create_app")
    return state
