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
from stackyard.exports.imports import ImportService
from stackyard.exports.lifecycle import ExportLifecycle
from stackyard.exports.service import ExportService
from stackyard.exports.storage import StorageService
from stackyard.inventory.service import InventoryService
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
    exports: ExportService | None = None
    imports: ImportService | None = None
    storage: StorageService | None = None
    lifecycle: ExportLifecycle | None = None  # retention pruning and export schedules
    inventory: InventoryService | None = None
    periodic: tuple[Periodic, ...] = ()
    runs_jobs: bool = True  # False when jobs run on Celery workers (jobs.broker_url)

    @property
    def quotas(self) -> QuotaRuntime:
        if self.quota_runtime is None:
            raise ConfigError("quotas by enrollment need an OpenStack provider (quotas.cloud)")
        return self.quota_runtime

    @property
    def export_service(self) -> ExportService:
        if self.exports is None:
            raise ConfigError("exports need an OpenStack provider with Glance")
        return self.exports

    @property
    def import_service(self) -> ImportService:
        if self.imports is None:
            raise ConfigError("imports need an OpenStack provider with Glance")
        return self.imports

    @property
    def export_lifecycle(self) -> ExportLifecycle:
        if self.lifecycle is None:
            raise ConfigError("export retention needs an OpenStack provider with Glance")
        return self.lifecycle

    @property
    def storage_service(self) -> StorageService:
        if self.storage is None:
            raise ConfigError("storage downloads need an OpenStack provider with Swift")
        return self.storage

    @property
    def inventory_service(self) -> InventoryService:
        if self.inventory is None:
            raise ConfigError("the network inventory needs an OpenStack provider with Neutron")
        return self.inventory

    def start_background(self) -> None:
        """The job runner and periodic rounds; started by the app's lifespan, never by building state."""
        if self.runs_jobs:
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
