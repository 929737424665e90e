"""Keep one sync scope current: poll on the SyncLoop's intervals, and sync at once when woken by an event."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from stackyard.inventory.events import WatchedSet
from stackyard.inventory.loop import SyncLoop, SyncOutcome
from stackyard.inventory.notifications import NotificationWatcher
from stackyard.inventory.service import SyncResult

WAIT_SLICE = 0.5  # seconds between looks at the stop flag while sleeping


class SyncTrigger(StrEnum):
    START = "start"  # the first sync
    POLL = "poll"  # the polling interval ran out
    EVENT = "event"  # a notification affecting the scope woke the loop


@dataclass(frozen=True)
class WatchedOutcome:
    trigger: SyncTrigger
    outcome: SyncOutcome


def watched_set_of(instance_ids: Iterable[str], result: SyncResult | None) -> WatchedSet:
    """What a scope depends on after a sync: its VMs, the subnet's network, the ports its configs hold."""
    if result is None:
        return WatchedSet.of(instance_ids)
    return WatchedSet.of(instance_ids, result.subnet.network_id, result.port_ids)


@dataclass
class ScopeWatch:
    """Runs a SyncLoop in the calling thread until `stopping` is set.

    Between syncs it sleeps for the delay the loop chose, unless `wake` is set first: by the
    notification watcher (registered under `key`) or by anyone else (a spec change). After a wake it
    waits `settle` seconds so that a burst (Nova's attach brings a port update and an instance event)
    costs one sync; an event during a sync wakes the next one at once, so none is lost.
    """

    key: str
    loop: SyncLoop
    instance_ids: tuple[str, ...]
    watcher: NotificationWatcher | None = None
    settle: float = 0.5
    on_outcome: Callable[[WatchedOutcome], None] = lambda _outcome: None
    monotonic: Callable[[], float] = time.monotonic
    wake: threading.Event = field(default_factory=threading.Event)

    def run(self, stopping: threading.Event) -> None:
        if self.watcher is not None:
            self.watcher.watch(self.key, WatchedSet.of(self.instance_ids), lambda _event: self.wake.set())
        trigger = SyncTrigger.START
        try:
            while not stopping.is_set():
                self.wake.clear()
                outcome = self.loop.step()
                if self.watcher is not None and outcome.result is not None:
                    self.watcher.update(self.key, watched_set_of(self.instance_ids, outcome.result))
                self.on_outcome(WatchedOutcome(trigger, outcome))
                trigger = self._sleep(outcome.delay, stopping)
        finally:
            if self.watcher is not None:
                self.watcher.unwatch(self.key)

    def _sleep(self, delay: float, stopping: threading.Event) -> SyncTrigger:
        deadline = self.monotonic() + delay
        while not stopping.is_set():
            remaining = deadline - self.monotonic()
            if remaining <= 0:
                return SyncTrigger.POLL
            if self.wake.wait(min(remaining, WAIT_SLICE)):
                stopping.wait(self.settle)
                return SyncTrigger.EVENT
        return SyncTrigger.POLL
