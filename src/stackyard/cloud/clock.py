"""Time as a port: a `Clock` Protocol, the system clock, and a fake clock that tests drive."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the cloud layer reads time and sleeps, so tests never wait for real."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences are meaningful."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` (non-negative)."""
        ...

    def now(self) -> datetime:
        """The wall-clock time, timezone-aware."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.sleep` and UTC wall time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


_FAKE_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when slept on or advanced; records every sleep. Thread-safe."""

    def __init__(self, *, start: float = 0.0, wall: datetime = _FAKE_EPOCH) -> None:
        if wall.tzinfo is None:
            raise ValueError("FakeClock wall time must be timezone-aware")
        self._lock = threading.Lock()
        self._monotonic = start
        self._wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def now(self) -> datetime:
        with self._lock:
            return self._wall

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds}")
        with self._lock:
            self.sleeps.append(seconds)
            self._advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep (time spent inside a call)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds}")
        with self._lock:
            self._advance(seconds)

    @property
    def slept(self) -> float:
        """Total seconds slept so far."""
        with self._lock:
            return sum(self.sleeps)

    def _advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._wall += timedelta(seconds=seconds)
