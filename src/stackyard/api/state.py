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
from stackyard.providers.base import Provider


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

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()


def app_state(request: Request) -> AppState:
    state = request.app.state.stackyard
    if not isinstance(state, AppState):
        raise RuntimeError("the app was not built by stackyard.api.app.create_app")
    return state
