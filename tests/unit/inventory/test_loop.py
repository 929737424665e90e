"""The sync loop's timing: fast after a change, a bounded number of fast retries for ports not ready,
slow when stable, the error interval after a failure."""

from __future__ import annotations

from datetime import UTC, datetime

from stackyard.cloud.models import Subnet
from stackyard.errors import Unavailable
from stackyard.inventory.loop import SyncLoop
from stackyard.inventory.models import PollIntervals
from stackyard.inventory.service import NodeOutcome, NodeState, SyncResult

SUBNET = Subnet("sub", None, "10.0.0.0/24", None, "net", 1500)
INTERVALS = PollIntervals(fast=20, fast_window=180, slow=120, error=30, pending_retries=2)


def result(state: NodeState = NodeState.UNCHANGED, pending: tuple[str, ...] = ()) -> SyncResult:
    nodes = (NodeOutcome("n-1", "vm-1", state, 1),)
    return SyncResult(SUBNET, nodes, (), pending, 0, datetime.now(UTC))


class Script:
    def __init__(self, *steps: SyncResult | Exception) -> None:
        self.steps = list(steps)
        self.now = 0.0

    def sync(self) -> SyncResult:
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def test_fast_after_a_change_then_slow_once_the_window_is_over() -> None:
    script = Script(result(NodeState.PUSHED), result(), result())
    loop = SyncLoop(script.sync, INTERVALS, monotonic=lambda: script.now)
    assert loop.step().delay == 20
    script.now = 100.0
    assert loop.step().delay == 20  # still inside the 180 s window
    script.now = 181.0
    assert loop.step().delay == 120


def test_ports_not_ready_get_a_bounded_number_of_fast_retries() -> None:
    pending = result(pending=("p-1",))
    script = Script(pending, pending, pending, pending, result())
    loop = SyncLoop(script.sync, INTERVALS, monotonic=lambda: 1000.0)
    assert [loop.step().delay for _ in range(4)] == [20, 20, 120, 120]
    assert loop.step().delay == 120 and loop.pending_attempts == 0  # ready again: the count restarts


def test_a_failure_is_kept_and_waits_the_error_interval() -> None:
    script = Script(Unavailable("neutron is down", service="network"), result(NodeState.FAILED))
    loop = SyncLoop(script.sync, INTERVALS)
    first = loop.step()
    assert first.result is None and isinstance(first.error, Unavailable) and first.delay == 30
    second = loop.step()
    assert second.error is None and second.delay == 30  # a push that failed is retried soon too
