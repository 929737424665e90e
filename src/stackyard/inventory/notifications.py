"""Consume the cloud's notifications from RabbitMQ (kombu) and wake the sync scopes they affect.

One watcher holds one connection and one dedicated queue, bound to the `neutron` and `nova`
exchanges on the notification topics; any number of scopes register with it (the CLI one, the
operator one per resource). The queue has a message TTL, a length cap and an expiry, so a queue
left behind by a consumer that went away empties itself and is then deleted by the broker.

Polling stays the source of truth: an event only makes a sync happen sooner. So the queue is
declared by us with our arguments, events that arrive while we are disconnected may be lost (the
next poll catches up), and a message is acknowledged once its callbacks ran, whatever they did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message
from kombu.messaging import Consumer

from stackyard.errors import ValidationError
from stackyard.inventory.events import (
    QUEUE_PREFIX,
    InventoryEvent,
    WatchedSet,
    affects,
    parse_notification,
    redact_url,
)

_LOG = logging.getLogger(__name__)

DEFAULT_EXCHANGES = ("neutron", "nova")
# Neutron (and Nova's legacy format) publish on `notifications`, Nova's versioned ones on
# `versioned_notifications`; oslo.messaging appends the priority to the topic.
DEFAULT_TOPICS = ("notifications.info", "versioned_notifications.info")
NOTIFICATIONS_URL_ENV = "STACKYARD_NOTIFICATIONS_URL"
NOT_FOUND, PRECONDITION_FAILED = 404, 406  # AMQP reply codes

Notify = Callable[[InventoryEvent], None]


@dataclass(frozen=True)
class NotificationSettings:
    """Where notifications come from and how our queue is declared. `url` holds a password."""

    url: str = field(repr=False)  # amqp://user:password@host:5672/vhost
    queue: str = QUEUE_PREFIX  # dedicated: one per consumer that must see every event
    exchanges: tuple[str, ...] = DEFAULT_EXCHANGES
    topics: tuple[str, ...] = DEFAULT_TOPICS
    message_ttl: float = 60.0  # seconds an event may wait in the queue (older ones are stale)
    queue_expires: float = 600.0  # seconds an unused queue lives on before the broker deletes it
    max_length: int = 10_000  # events kept at most; the oldest go first
    # Must match the cloud's [oslo_messaging_rabbit] amqp_durable_queues if we create the exchange.
    durable_exchanges: bool = False
    heartbeat: float = 30.0
    reconnect_initial: float = 1.0  # seconds before the first reconnect; doubles, with jitter
    reconnect_max: float = 30.0
    prefetch: int = 100

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("amqp", "amqps", "pyamqp"):
            raise ValidationError("notifications.url", "expected amqp://user:password@host:port/vhost")
        if not self.queue or len(self.queue) > 255:
            raise ValidationError("notifications.queue", "expected a queue name of 1 to 255 characters")
        if not self.exchanges or not self.topics:
            raise ValidationError("notifications.topics", "give at least one exchange and one topic")
        for name in ("message_ttl", "queue_expires", "reconnect_initial", "reconnect_max"):
            if getattr(self, name) <= 0:
                raise ValidationError(f"notifications.{name}", "must be positive seconds")
        if self.max_length < 1 or self.prefetch < 1:
            raise ValidationError("notifications.max_length", "must be at least 1")

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @property
    def queue_arguments(self) -> dict[str, int]:
        """x-message-ttl and x-expires in milliseconds, as RabbitMQ wants them."""
        return {
            "x-message-ttl": int(self.message_ttl * 1000),
            "x-expires": int(self.queue_expires * 1000),
            "x-max-length": self.max_length,
        }


def settings_from(
    section: Mapping[str, object],
    environ: Mapping[str, str],
    *,
    url: str | None = None,
    queue: str | None = None,
    message_ttl: float | None = None,
    queue_expires: float | None = None,
    exchanges: tuple[str, ...] | None = None,
    topics: tuple[str, ...] | None = None,
) -> NotificationSettings | None:
    """The `inventory.notifications` settings, under command-line values; None when no URL is set.

    The URL comes from `url`, else STACKYARD_NOTIFICATIONS_URL, else the variable named by
    `url_env`, else the section's `url` (a password in a settings file is discouraged, not refused).
    """
    defaults = NotificationSettings("amqp://placeholder")
    known = {f.name for f in dataclasses.fields(NotificationSettings)} | {"url_env"}
    unknown = set(section) - known
    if unknown:
        raise ValidationError(f"inventory.notifications.{sorted(unknown)[0]}", "unknown setting")
    url_env = section.get("url_env")
    found = (
        url
        or environ.get(NOTIFICATIONS_URL_ENV)
        or (environ.get(url_env) if isinstance(url_env, str) else None)
        or section.get("url")
    )
    if not found:
        return None
    if not isinstance(found, str):
        raise ValidationError("inventory.notifications.url", "expected a string")

    def text(key: str, given: str | None, default: str) -> str:
        value = given if given is not None else section.get(key, default)
        if not isinstance(value, str):
            raise ValidationError(f"inventory.notifications.{key}", "expected a string")
        return value

    def number(key: str, given: float | None, default: float) -> float:
        value = given if given is not None else section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"inventory.notifications.{key}", "expected a number")
        return float(value)

    def names(key: str, given: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
        value = given if given is not None else section.get(key, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValidationError(f"inventory.notifications.{key}", "expected a list of names")
        return tuple(value)

    durable = section.get("durable_exchanges", defaults.durable_exchanges)
    if not isinstance(durable, bool):
        raise ValidationError("inventory.notifications.durable_exchanges", "expected true or false")
    return NotificationSettings(
        found,
        queue=text("queue", queue, defaults.queue),
        exchanges=names("exchanges", exchanges, defaults.exchanges),
        topics=names("topics", topics, defaults.topics),
        message_ttl=number("message_ttl", message_ttl, defaults.message_ttl),
        queue_expires=number("queue_expires", queue_expires, defaults.queue_expires),
        max_length=int(number("max_length", None, defaults.max_length)),
        durable_exchanges=durable,
        heartbeat=number("heartbeat", None, defaults.heartbeat),
        reconnect_initial=number("reconnect_initial", None, defaults.reconnect_initial),
        reconnect_max=number("reconnect_max", None, defaults.reconnect_max),
        prefetch=int(number("prefetch", None, defaults.prefetch)),
    )


@dataclass(frozen=True)
class WatcherStats:
    connects: int  # successful connections, the first included
    received: int  # messages taken from the queue
    matched: int  # inventory events that woke at least one scope
    ignored: int  # well-formed notifications of other kinds, or affecting no scope
    malformed: int  # bodies that could not be parsed (dropped, one log line each)
    last_error: str | None  # the last connection failure, password removed


@dataclass
class _Scope:
    watched: WatchedSet
    notify: Notify


class NotificationWatcher:
    """Consumes notifications in a thread of its own and calls the callbacks of affected scopes.

    `watch(key, watched, notify)` registers a scope; `update` replaces its watched set after each
    sync; `unwatch` drops it. `notify` runs on the watcher's thread: it should only hand over (set a
    threading.Event, or `loop.call_soon_threadsafe(event.set)` for asyncio). The broker being down is
    never an error for callers: the watcher retries with backoff while polling goes on.

    From asyncio (one watcher per process, one scope per resource)::

        watcher.watch(uid, WatchedSet.of(vm_ids), lambda _e: loop.call_soon_threadsafe(wake.set))
        ...  # after each sync:
        watcher.update(uid, watched_set_of(vm_ids, outcome.result))
        ...  # when the resource goes or its daemon stops:
        watcher.unwatch(uid)
    """

    def __init__(self, settings: NotificationSettings, *, drain_timeout: float = 1.0) -> None:
        self.settings = settings
        self._drain_timeout = drain_timeout
        self._scopes: dict[str, _Scope] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._connects = self._received = self._matched = self._ignored = self._malformed = 0
        self._last_error: str | None = None
        self._password = unquote(urlsplit(settings.url).password or "")

    # -- scopes ----------------------------------------------------------------------------------

    def watch(self, key: str, watched: WatchedSet, notify: Notify) -> None:
        with self._lock:
            self._scopes[key] = _Scope(watched, notify)

    def update(self, key: str, watched: WatchedSet) -> None:
        """Replace a scope's watched set (after a sync: its network and ports are known then)."""
        with self._lock:
            scope = self._scopes.get(key)
            if scope is not None:
                scope.watched = watched

    def unwatch(self, key: str) -> None:
        with self._lock:
            self._scopes.pop(key, None)

    def watched(self, key: str) -> WatchedSet | None:
        with self._lock:
            scope = self._scopes.get(key)
            return None if scope is None else scope.watched

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and consume in a daemon thread; returns at once (see `wait_connected`)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="inventory-notifications", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stats(self) -> WatcherStats:
        with self._lock:
            return WatcherStats(
                self._connects,
                self._received,
                self._matched,
                self._ignored,
                self._malformed,
                self._last_error,
            )

    # -- messages --------------------------------------------------------------------------------

    def dispatch(self, body: bytes | str | Mapping[str, object]) -> list[str]:
        """Parse one message body and call the callback of every scope it affects; returns their keys."""
        try:
            event = parse_notification(body)
        except ValidationError as exc:
            # The body is not logged: its request context holds the caller's Keystone token.
            _LOG.warning("inventory notifications: dropped a malformed message: %s", exc)
            with self._lock:
                self._malformed += 1
            return []
        with self._lock:
            hit = (
                []
                if event is None
                else [(k, s.notify) for k, s in self._scopes.items() if affects(event, s.watched)]
            )
            if hit:
                self._matched += 1
            else:
                self._ignored += 1
        if event is None or not hit:
            return []
        _LOG.info("inventory notifications: %s wakes %s", event.describe(), ", ".join(k for k, _ in hit))
        for key, notify in hit:
            try:
                notify(event)
            except Exception:  # noqa: BLE001 - a callback's bug must not stop the consumer the other scopes rely on
                _LOG.exception("inventory notifications: the callback of %s failed", key)
        return [key for key, _ in hit]

    def _on_message(self, message: Message) -> None:
        with self._lock:
            self._received += 1
        try:
            self.dispatch(message.body)
        finally:
            message.ack()

    # -- connection ------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def _run(self) -> None:
        delay = self.settings.reconnect_initial
        while not self._stopping.is_set():
            try:
                self._consume()
                delay = self.settings.reconnect_initial
            except Exception as exc:  # noqa: BLE001 - whatever the broker or the network did: log, back off, retry
                self._connected.clear()
                reason = self._scrub(f"{type(exc).__name__}: {exc}")
                with self._lock:
                    self._last_error = reason
                pause = random.uniform(delay / 2, delay)
                _LOG.warning(
                    "inventory notifications: broker %s: %s; reconnecting in %.1f s",
                    self.settings.redacted_url,
                    reason,
                    pause,
                )
                self._stopping.wait(pause)
                delay = min(delay * 2, self.settings.reconnect_max)
        self._connected.clear()

    def _consume(self) -> None:
        settings = self.settings
        with Connection(settings.url, heartbeat=settings.heartbeat, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
            self._declare(conn)
            channel = conn.channel()
            consumer = Consumer(
                channel,
                queues=[Queue(settings.queue, no_declare=True)],
                on_message=self._on_message,
                prefetch_count=settings.prefetch,
                auto_declare=False,
            )
            consumer.consume()
            with self._lock:
                self._connects += 1
                connects = self._connects
            self._connected.set()
            _LOG.info(
                "inventory notifications: consuming %s on %s (%s)",
                settings.queue,
                settings.redacted_url,
                "connected" if connects == 1 else "reconnected",
            )
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=self._drain_timeout)
                conn.heartbeat_check()
            consumer.cancel()
        self._connected.clear()

    def _declare(self, conn: Connection) -> None:
        """Our queue with its TTL, cap and expiry, bound to every exchange on every topic."""
        settings = self.settings
        for exchange in settings.exchanges:
            channel = conn.channel()
            try:
                channel.exchange_declare(exchange, "topic", passive=True)
                channel.close()
            except conn.channel_errors as exc:
                if _reply_code(exc) != NOT_FOUND:
                    raise
                # NOTE: a 404 closes the channel. oslo.messaging declares its topic exchanges with
                # durable=amqp_durable_queues (False by default) and auto_delete=False; ours must
                # be the same or the service's own declaration fails with PRECONDITION_FAILED.
                conn.channel().exchange_declare(
                    exchange, "topic", durable=settings.durable_exchanges, auto_delete=False
                )
        # Durable, because RabbitMQ 4 deprecates transient non-exclusive queues; x-expires rather
        # than auto_delete, so that a reconnect within the expiry still finds the events of the gap.
        declare = {"durable": True, "auto_delete": False, "arguments": settings.queue_arguments}
        channel = conn.channel()
        try:
            channel.queue_declare(settings.queue, **declare)
        except conn.channel_errors as exc:
            if _reply_code(exc) != PRECONDITION_FAILED:
                raise
            # Our queue exists with other arguments (another TTL): it is ours, so recreate it,
            # unless a consumer still uses it (then this fails and the backoff loop retries).
            _LOG.warning(
                "inventory notifications: queue %s has other arguments; recreating it", settings.queue
            )
            channel = conn.channel()
            channel.queue_delete(settings.queue, if_unused=True)
            channel.queue_declare(settings.queue, **declare)
        for exchange in settings.exchanges:
            for topic in settings.topics:
                channel.queue_bind(settings.queue, exchange, topic)
        channel.close()


def _reply_code(exc: BaseException) -> int | None:
    """The AMQP reply code of a channel error (py-amqp's exceptions carry it as `code`)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None
