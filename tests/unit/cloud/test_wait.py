"""wait_for: polling typed statuses to a target or deletion, failure faults, progress, deadline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from stackyard.cloud.clock import FakeClock
from stackyard.cloud.status import SERVER_FAILURES, VOLUME_FAILURES, ImageStatus, ServerStatus, VolumeStatus
from stackyard.cloud.wait import DELETED, wait_for
from stackyard.errors import NotFound, ResourceFailed, Timeout, Unavailable


@dataclass
class Server:
    status: str | None
    progress: int | None = None
    fault: str | None = None


class Script:
    """fetch() returning scripted resources (or raising), advancing nothing itself: only sleeps move time."""

    def __init__(self, steps: Iterable[Server | Exception]) -> None:
        self.steps = list(steps)
        self.fetches = 0

    def fetch(self) -> Server:
        self.fetches += 1
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]  # the last one repeats
        if isinstance(step, Exception):
            raise step
        return step


def server_status(server: Server) -> ServerStatus:
    return ServerStatus.from_openstack(server.status)


def volume_status(server: Server) -> VolumeStatus:
    return VolumeStatus.from_openstack(server.status)


def test_returns_the_resource_once_it_reaches_the_target() -> None:
    clock = FakeClock()
    script = Script([Server("BUILD"), Server("build"), Server("ACTIVE")])
    result = wait_for(
        script.fetch,
        ServerStatus.ACTIVE,
        SERVER_FAILURES,
        status_of=server_status,
        timeout=60,
        interval=5,
        clock=clock,
    )
    assert result.status == "ACTIVE"
    assert script.fetches == 3 and clock.sleeps == [5.0, 5.0]


def test_already_there_means_no_sleep() -> None:
    clock = FakeClock()
    script = Script([Server("ACTIVE")])
    wait_for(script.fetch, ServerStatus.ACTIVE, status_of=server_status, timeout=60, clock=clock)
    assert clock.sleeps == [] and script.fetches == 1


def test_progress_is_reported_on_each_change_only() -> None:
    clock = FakeClock()
    script = Script(
        [
            Server("BUILD", 0),
            Server("BUILD", 0),
            Server("BUILD", 40),
            Server("BUILD", 40),
            Server("ACTIVE", 100),
        ]
    )
    seen: list[tuple[ServerStatus, int | None, float]] = []
    wait_for(
        script.fetch,
        ServerStatus.ACTIVE,
        status_of=server_status,
        progress_of=lambda s: s.progress,
        on_progress=lambda status, progress, elapsed: seen.append((status, progress, elapsed)),
        timeout=60,
        interval=2,
        clock=clock,
    )
    assert seen == [
        (ServerStatus.BUILD, 0, 0.0),
        (ServerStatus.BUILD, 40, 4.0),
        (ServerStatus.ACTIVE, 100, 8.0),
    ]


def test_failure_state_raises_with_the_fault_message() -> None:
    clock = FakeClock()
    fault = "No valid host was found. There are not enough hosts available."
    script = Script([Server("BUILD"), Server("ERROR", fault=fault)])
    with pytest.raises(ResourceFailed) as info:
        wait_for(
            script.fetch,
            ServerStatus.ACTIVE,
            SERVER_FAILURES,
            status_of=server_status,
            fault_of=lambda s: s.fault,
            timeout=60,
            clock=clock,
            what="server web-1",
            service="compute",
        )
    error = info.value
    assert error.status == "ERROR" and error.fault == fault and error.service == "compute"
    assert str(error) == f"server web-1 went to ERROR while waiting for ACTIVE: {fault}"


def test_fault_messages_are_redacted() -> None:
    script = Script([Server("ERROR", fault='Build failed: {"adminPass": "Root-Pw-123"}')])
    with pytest.raises(ResourceFailed) as info:
        wait_for(
            script.fetch,
            ServerStatus.ACTIVE,
            SERVER_FAILURES,
            status_of=server_status,
            fault_of=lambda s: s.fault,
            timeout=60,
            clock=FakeClock(),
        )
    assert "Root-Pw-123" not in str(info.value) and info.value.fault is not None
    assert "Root-Pw-123" not in info.value.fault


def test_failure_without_fault_still_names_the_state() -> None:
    script = Script([Server("error")])
    with pytest.raises(ResourceFailed, match=r"went to error while waiting for available$"):
        wait_for(
            script.fetch,
            VolumeStatus.AVAILABLE,
            VOLUME_FAILURES,
            status_of=volume_status,
            timeout=5,
            clock=FakeClock(),
        )


def test_times_out_after_a_last_look_at_the_deadline() -> None:
    clock = FakeClock()
    script = Script([Server("BUILD")])
    with pytest.raises(Timeout) as info:
        wait_for(
            script.fetch,
            ServerStatus.ACTIVE,
            status_of=server_status,
            timeout=10,
            interval=3,
            clock=clock,
            what="server web-1",
            service="compute",
        )
    assert clock.sleeps == [3.0, 3.0, 3.0, 1.0]  # the last sleep is cut to the deadline
    assert script.fetches == 5 and clock.monotonic() == 10.0
    assert "server web-1 still BUILD after 10s waiting for ACTIVE" in str(info.value)
    assert info.value.service == "compute"


def test_zero_timeout_looks_once() -> None:
    script = Script([Server("BUILD")])
    with pytest.raises(Timeout):
        wait_for(script.fetch, ServerStatus.ACTIVE, status_of=server_status, timeout=0, clock=FakeClock())
    assert script.fetches == 1


def test_unknown_statuses_keep_the_wait_going() -> None:
    clock = FakeClock()
    script = Script([Server(None), Server("SOMETHING_NEW"), Server("UNKNOWN"), Server("ACTIVE")])
    seen: list[ServerStatus] = []
    wait_for(
        script.fetch,
        ServerStatus.ACTIVE,
        SERVER_FAILURES,
        status_of=server_status,
        on_progress=lambda status, _p, _e: seen.append(status),
        timeout=60,
        interval=1,
        clock=clock,
    )
    assert seen == [ServerStatus.UNKNOWN, ServerStatus.ACTIVE]
    assert script.fetches == 4


def test_waiting_for_deletion_succeeds_on_not_found() -> None:
    clock = FakeClock()
    script = Script([Server("ACTIVE"), Server("DELETING"), NotFound("gone")])
    assert (
        wait_for(script.fetch, DELETED, status_of=server_status, timeout=60, interval=2, clock=clock) is None
    )
    assert script.fetches == 3 and clock.sleeps == [2.0, 2.0]


def test_waiting_for_deletion_accepts_a_deleted_status() -> None:
    script = Script([Server("active"), Server("deleted")])
    assert (
        wait_for(
            script.fetch,
            DELETED,
            status_of=lambda s: ImageStatus.from_openstack(s.status),
            timeout=60,
            clock=FakeClock(),
        )
        is None
    )
    assert script.fetches == 2


def test_waiting_for_deletion_still_raises_on_failure_states() -> None:
    script = Script([Server("deleting"), Server("error_deleting", fault="backend unreachable")])
    with pytest.raises(ResourceFailed, match="while waiting for deletion: backend unreachable"):
        wait_for(
            script.fetch,
            DELETED,
            VOLUME_FAILURES,
            status_of=volume_status,
            fault_of=lambda s: s.fault,
            timeout=60,
            clock=FakeClock(),
        )


def test_waiting_for_deletion_times_out() -> None:
    script = Script([Server("deleting")])
    with pytest.raises(Timeout, match="waiting for deletion"):
        wait_for(script.fetch, DELETED, status_of=volume_status, timeout=4, interval=2, clock=FakeClock())


def test_disappearing_while_waiting_for_a_status_is_not_found() -> None:
    script = Script([Server("BUILD"), NotFound("No Server found")])
    with pytest.raises(NotFound, match="server web-1 disappeared while waiting for ACTIVE"):
        wait_for(
            script.fetch,
            ServerStatus.ACTIVE,
            status_of=server_status,
            timeout=60,
            clock=FakeClock(),
            what="server web-1",
        )


def test_other_errors_from_fetch_propagate() -> None:
    script = Script([Server("BUILD"), Unavailable("compute: HTTP 503")])
    with pytest.raises(Unavailable):
        wait_for(script.fetch, ServerStatus.ACTIVE, status_of=server_status, timeout=60, clock=FakeClock())


@pytest.mark.parametrize(("timeout", "interval"), [(-1, 2), (10, 0), (10, -1)])
def test_nonsense_arguments_are_rejected(timeout: float, interval: float) -> None:
    with pytest.raises(ValueError):
        wait_for(
            Script([Server("ACTIVE")]).fetch,
            ServerStatus.ACTIVE,
            status_of=server_status,
            timeout=timeout,
            interval=interval,
            clock=FakeClock(),
        )
