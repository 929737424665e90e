"""Fixtures for the auth unit tests: a fake clock, Keystone tokens, and a migrated SQLite database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.clock import FakeClock
from stackyard.cloud.identity import KeystoneToken
from stackyard.db.engine import make_engine, session_factory
from stackyard.db.migrate import upgrade

SECRET = "unit-test-secret-" + "x" * 40


def _keystone_token(
    clock: FakeClock,
    *,
    token: str = "gAAAAAB-keystone-token-for-tests-0123456789",
    roles: tuple[str, ...] = ("member", "reader"),
    project_id: str | None = "p-demo",
    lifetime: float = 3600,
) -> KeystoneToken:
    now: datetime = clock.now()
    return KeystoneToken(
        token=token,
        expires_at=now + timedelta(seconds=lifetime),
        user_id="u-demo",
        user_name="demo",
        user_domain_id="default",
        project_id=project_id,
        project_name="demo" if project_id else None,
        project_domain_id="default" if project_id else None,
        roles=roles,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_token(clock: FakeClock) -> Callable[..., KeystoneToken]:
    """Keystone tokens as KeystoneIdentity returns them, expiring `lifetime` seconds after the clock's now."""
    return partial(_keystone_token, clock)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()
