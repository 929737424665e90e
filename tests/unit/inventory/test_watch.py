"""The notification watcher's dispatch and settings, and the watched loop: an event wakes a sync early,
polling goes on without one, a broker that is not there is retried without leaking its password."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from stackyard.cloud.models import Subnet
from stackyard.errors import ValidationError
from stackyard.inventory.events import InventoryEvent, WatchedSet
from stackyard.inventory.loop import SyncLoop
from stackyard.inventory.models import PollIntervals
from stackyard.inventory.notifications import NotificationSettings, NotificationWatcher, settings_from
from stackyard.inventory.service import NodeOutcome, NodeState, SyncResult
from stackyard.inventory.watch import ScopeWatch, SyncTrigger, WatchedOutcome, watched_set_of

URL = "amqp://stackyard:pa55word@127.0.0.1:5672/"
SUBNET = Subnet("sub", None, "10.0.0.0/24", None, "net-1", 1500)


def envelope(event_type: str, payload: object) -> bytes:
    message = {"event_type": event_type, "payload": payload, "_context_auth_token": "tok-secret"}
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)}).encode()


def port_update(port_id: str, device_id: str, network_id: str = "net-1") -> bytes:
    return envelope(
        "port.update.end", {"port": {"id": port_id, "device_id": device_id, "network_id": network_id}}
    )


def test_dispatch_calls_the_scopes_an_event_affects_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher = NotificationWatcher(NotificationSettings(URL))
    woken: list[tuple[str, InventoryEvent]] = []
    watcher.watch("a", WatchedSet.of(["vm-a"], "net-1"), lambda e: woken.append(("a", e)))
    watcher.watch("b", WatchedSet.of(["vm-b"], "net-1", ["p-b"]), lambda e: woken.append(("b", e)))
    assert watcher.dispatch(port_update("p-new", "vm-a")) == ["a"]
    assert watcher.dispatch(port_update("p-b", "")) == ["b"]  # detached from a watched VM
    assert watcher.dispatch(port_update("p-x", "vm-c")) == []
    assert watcher.dispatch(envelope("network.create.end", {"network": {}})) == []
    with caplog.at_level(logging.WARNING):
        assert watcher.dispatch(b"{broken") == []
    assert [key for key, _ in woken] == ["a", "b"]
    stats = watcher.stats()
    assert (stats.matched, stats.ignored, stats.malformed) == (2, 2, 1)
    assert "malformed" in caplog.text and "tok-secret" not in caplog.text

    watcher.update("a", WatchedSet.of(["vm-a"], "net-2"))
    assert watcher.dispatch(port_update("p-new", "vm-a")) == []  # another network now
    watcher.unwatch("b")
    assert watcher.dispatch(port_update("p-b", "")) == [] and watcher.watched("b") is None


def test_a_failing_callback_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    watcher = NotificationWatcher(NotificationSettings(URL))
    woken: list[str] = []

    def broken(_event: InventoryEvent) -> None:
        raise RuntimeError("bug")

    watcher.watch("broken", WatchedSet.of(["vm"]), broken)
    watcher.watch("fine", WatchedSet.of(["vm"]), lambda _e: woken.append("fine"))
    with caplog.at_level(logging.ERROR):
        assert sorted(watcher.dispatch(port_update("p", "vm"))) == ["broken", "fine"]
    assert woken == ["fine"] and "callback of broken failed" in caplog.text


def test_settings_take_the_url_from_the_command_line_the_environment_or_the_file() -> None:
    assert settings_from({}, {}) is None  # no URL anywhere: no event mode
    from_file = settings_from({"url": URL, "queue": "q", "message_ttl": 30, "topics": ["a.info"]}, {})
    assert from_file is not None and (from_file.queue, from_file.topics) == ("q", ("a.info",))
    assert from_file.queue_arguments == {"x-message-ttl": 30000, "x-expires": 600000, "x-max-length": 10000}
    by_env = settings_from({"url_env": "MY_URL"}, {"MY_URL": "amqp://other@h//"})
    assert by_env is not None and by_env.url == "amqp://other@h//"
    env = {"STACKYARD_NOTIFICATIONS_URL": URL, "MY_URL": "amqp://other@h//"}
    assert settings_from({"url_env": "MY_URL"}, env).url == URL  # type: ignore[union-attr]
    flag = settings_from({}, env, url="amqp://cli@h//", queue="mine", message_ttl=None)
    assert flag is not None and (flag.url, flag.queue, flag.message_ttl) == ("amqp://cli@h//", "mine", 60.0)
    assert "pa55word" not in repr(from_file) and "pa55word" not in from_file.redacted_url


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"url": URL, "colour": "red"}, "inventory.notifications.colour"),
        ({"url": "redis://h"}, "notifications.url"),
        ({"url": URL, "message_ttl": 0}, "notifications.message_ttl"),
        ({"url": URL, "topics": "notifications.info"}, "inventory.notifications.topics"),
        ({"url": URL, "exchanges": []}, "notifications.topics"),
        ({"url": URL, "message_ttl": "soon"}, "inventory.notifications.message_ttl"),
        ({"url": URL, "durable_exchanges": "no"}, "inventory.notifications.durable_exchanges"),
        ({"url": URL, "queue": 5}, "inventory.notifications.queue"),
    ],
)
def test_bad_settings_name_the_field(section: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings_from(section, {})
    assert info.value.field == field


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_broker_that_is_not_there_is_retried_and_its_password_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = NotificationSettings(
        f"amqp://stackyard:pa55word@127.0.0.1:{free_port()}/", reconnect_initial=0.05, reconnect_max=0.1
    )
    watcher = NotificationWatcher(settings)
    with caplog.at_level(logging.WARNING):
        watcher.start()
        time.sleep(1.0)
        assert not watcher.is_connected
        watcher.stop()
    stats = watcher.stats()
    assert stats.connects == 0 and stats.last_error is not None
    assert caplog.text.count("reconnecting in") >= 2
    assert "pa55word" not in caplog.text and "pa55word" not in stats.last_error


def result(network_id: str = "net-1", ports: tuple[str, ...] = ("p-1",)) -> SyncResult:
    subnet = Subnet("sub", None, "10.0.0.0/24", None, network_id, 1500)
    nodes = (NodeOutcome("n-1", "vm-1", NodeState.UNCHANGED, 1),)
    return SyncResult(subnet, nodes, (), (), 0, datetime.now(UTC), port_ids=ports)


def test_watched_set_after_a_sync_holds_the_network_and_ports() -> None:
    assert watched_set_of(["vm-1"], None) == WatchedSet.of(["vm-1"])
    assert watched_set_of(["vm-1"], result()) == WatchedSet.of(["vm-1"], "net-1", ["p-1"])


def test_an_event_wakes_the_loop_long_before_its_polling_interval() -> None:
    watcher = NotificationWatcher(NotificationSettings(URL))
    syncs: list[WatchedOutcome] = []
    synced = threading.Event()
    long = PollIntervals(fast=3600, fast_window=1, slow=3600, error=3600)
    watch = ScopeWatch(
        "scope",
        SyncLoop(result, long),
        ("vm-1",),
        watcher,
        settle=0.05,
        on_outcome=lambda outcome: (syncs.append(outcome), synced.set()),
    )
    stopping = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stopping,))
    thread.start()
    try:
        assert synced.wait(5)
        synced.clear()
        assert watcher.watched("scope") == WatchedSet.of(["vm-1"], "net-1", ["p-1"])
        assert watcher.dispatch(port_update("p-other", "vm-9")) == []  # not ours: no sync
        time.sleep(0.3)
        assert len(syncs) == 1
        began = time.monotonic()
        assert watcher.dispatch(port_update("p-1", "")) == ["scope"]
        assert synced.wait(5) and time.monotonic() - began < 2
        assert [s.trigger for s in syncs] == [SyncTrigger.START, SyncTrigger.EVENT]
    finally:
        stopping.set()
        thread.join(5)
    assert not thread.is_alive() and watcher.watched("scope") is None  # unregistered on the way out


def test_without_events_the_loop_polls_on_its_interval() -> None:
    syncs: list[WatchedOutcome] = []
    short = PollIntervals(fast=0.1, fast_window=1, slow=0.1, error=0.1)
    stopping = threading.Event()

    def record(outcome: WatchedOutcome) -> None:
        syncs.append(outcome)
        if len(syncs) == 3:
            stopping.set()

    ScopeWatch("scope", SyncLoop(result, short), ("vm-1",), None, on_outcome=record).run(stopping)
    assert [s.trigger for s in syncs] == [SyncTrigger.START, SyncTrigger.POLL, SyncTrigger.POLL]
    assert SUBNET.network_id == "net-1"
