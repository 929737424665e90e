"""The one retry policy for cloud calls: jittered backoff, Retry-After, re-auth, network pause, adoption."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from stackyard.cloud.clock import Clock
from stackyard.cloud.errormap import (
    header_of,
    http_status_of,
    is_cloud_exception,
    root_cause_of,
    translate_error,
    transport_failure_of,
)
from stackyard.cloud.ratelimit import RateLimiter
from stackyard.config import RetrySettings
from stackyard.errors import CloudError, ConfigError, StackyardError, Timeout

_LOG = logging.getLogger(__name__)

T = TypeVar("T")


class RandomSource(Protocol):
    """Where jitter comes from; `random.Random` fits, tests pass a seeded one."""

    def random(self) -> float:
        """A float in [0, 1)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `attempts` counted tries, full-jitter backoff, optional overall deadline (seconds).

    `network_poll` is how often reachability is probed while the cloud is unreachable; the time spent
    paused that way is bounded by `max_network_pause` (and by the deadline). A Retry-After longer than
    `max_retry_after` is not honoured: the call gives up instead of sleeping for hours.

    After an ambiguous failure of a create, a lookup that finds nothing is repeated every `settle_poll`
    seconds for up to `settle` seconds before the create is resent: a request that timed out on our side
    may still be running in the service, and its resource appears only once it gets that far. Failed
    lookups are retried with a budget of `attempts` of their own, so a flaky lookup never uses up the
    sends.
    """

    attempts: int = 5
    initial: float = 2.0
    multiplier: float = 2.0
    cap: float = 30.0
    deadline: float | None = None
    network_poll: float = 5.0
    max_network_pause: float = 300.0
    max_retry_after: float = 120.0
    settle: float = 10.0
    settle_poll: float = 2.0

    @classmethod
    def from_settings(cls, retry: RetrySettings) -> RetryPolicy:
        return cls(
            attempts=retry.attempts,
            initial=retry.initial,
            multiplier=retry.multiplier,
            cap=retry.cap,
            deadline=retry.deadline,
        )

    def __post_init__(self) -> None:
        problems = []
        if self.attempts < 1:
            problems.append(f"attempts must be at least 1, got {self.attempts}")
        if self.initial < 0 or self.cap < 0:
            problems.append(f"initial ({self.initial}) and cap ({self.cap}) must not be negative")
        if self.multiplier < 1:
            problems.append(f"multiplier must be at least 1, got {self.multiplier}")
        if self.deadline is not None and self.deadline <= 0:
            problems.append(f"deadline must be positive seconds, got {self.deadline}")
        if self.settle < 0 or self.settle_poll <= 0:
            problems.append(f"settle ({self.settle}) must not be negative and settle_poll positive")
        if self.network_poll <= 0 or self.max_network_pause < 0 or self.max_retry_after < 0:
            problems.append(
                "network_poll must be positive; max_network_pause and max_retry_after non-negative"
            )
        if problems:
            raise ConfigError("invalid retry policy: " + "; ".join(problems))

    def backoff_delay(self, attempt: int, rng: RandomSource) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): uniform in [0, ceiling).

        The ceiling is initial * multiplier**(attempt - 1), capped at `cap` ("full jitter").
        """
        if attempt < 1:
            raise ValueError(f"attempts are numbered from 1, got {attempt}")
        ceiling = min(self.initial, self.cap)
        for _ in range(attempt - 1):
            if ceiling in (0.0, self.cap) or self.multiplier == 1:
                break  # bounded by log(cap / initial) steps however large `attempt` is
            ceiling = min(self.cap, ceiling * self.multiplier)
        return rng.random() * ceiling


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Returns None when the header is absent or unreadable (including negative numbers), and 0.0 for a
    date already in the past.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    if text[0] in "+-" or text.replace(".", "", 1).isdigit():
        return None  # signed or fractional numbers are not delta-seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime form carries no zone; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Action(StrEnum):
    """What the retrier does after a failed attempt."""

    RETRY = "retry"  # transient: back off (or honour Retry-After) and try again
    REAUTHENTICATE = "reauthenticate"  # 401: the token probably expired; renew it once and resend
    WAIT_FOR_NETWORK = "wait_for_network"  # the endpoint could not be reached; nothing was sent
    FAIL = "fail"  # permanent: raise now


@dataclass(frozen=True)
class Verdict:
    """The classification of one failure."""

    action: Action
    is_ambiguous: bool = False  # the service may have received and applied the request
    retry_after: float | None = None  # seconds the service asked us to wait


_RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
_SENT_RETRY_STATUSES = frozenset({502, 503, 504})  # a gateway/backend may have acted before failing


def classify_failure(exc: BaseException, *, now: datetime) -> Verdict:
    """Decide what to do about `exc`, raised by keystoneauth1, openstacksdk or requests.

    Errors stackyard raised on purpose (any StackyardError) and non-cloud exceptions are FAIL.
    """
    root = root_cause_of(exc)
    if isinstance(root, StackyardError) or not is_cloud_exception(root):
        return Verdict(Action.FAIL)
    status = http_status_of(root)
    if status is not None:
        if status == 401:
            # NOTE: a 401 carrying an auth receipt (MissingAuthMethods) asks for MFA; renewing won't help.
            if isinstance(root, ksa_exc.MissingAuthMethods):
                return Verdict(Action.FAIL)
            return Verdict(Action.REAUTHENTICATE)
        if status in _RETRY_STATUSES:
            return Verdict(
                Action.RETRY,
                is_ambiguous=status in _SENT_RETRY_STATUSES,
                retry_after=_retry_after_of(root, now),
            )
        return Verdict(Action.FAIL, is_ambiguous=status >= 500)
    if isinstance(root, sdk_exc.NotSupported) and "supported versions" in str(root):
        # NOTE: openstacksdk turns a failed version discovery (a 503 or reset on the service's
        # root URL) into NotSupported; discovery is a GET, so trying again is safe.
        return Verdict(Action.RETRY)
    transport = transport_failure_of(root)
    if transport is None:
        return Verdict(Action.FAIL)
    if transport.is_unreachable:
        return Verdict(Action.WAIT_FOR_NETWORK)
    if transport.is_sent_maybe:
        return Verdict(Action.RETRY, is_ambiguous=True)
    return Verdict(Action.FAIL)


def _retry_after_of(exc: BaseException, now: datetime) -> float | None:
    parsed = parse_retry_after(header_of(exc, "Retry-After"), now)
    if parsed is not None:
        return parsed
    # keystoneauth parses integer Retry-After into .retry_after (0 when absent) even without a response.
    seconds = getattr(exc, "retry_after", 0)
    return float(seconds) if isinstance(seconds, int) and seconds > 0 else None


class RetryEventKind(StrEnum):
    """What the retrier is doing, for logs and progress output."""

    RETRYING = "retrying"
    REAUTHENTICATING = "reauthenticating"
    PAUSED = "paused"
    RESUMED = "resumed"
    LOOKING_UP = "looking_up"
    SETTLING = "settling"  # a lookup found nothing yet; the create may still be running in the service
    ADOPTED = "adopted"


@dataclass(frozen=True)
class RetryEvent:
    """One notable step of a call under the retry policy."""

    kind: RetryEventKind
    service: str
    operation: str
    attempt: int
    delay: float | None = None
    error: CloudError | None = None


class Retrier:
    """Runs cloud calls under one RetryPolicy; built once per connection with its collaborators.

    `probe` answers "can the cloud's endpoints be reached?" (it must not raise); `reauthenticate` renews
    the token (called at most once per call); `limiter` is taken once per request sent, lookups included.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        clock: Clock,
        rng: RandomSource | None = None,
        probe: Callable[[], bool] | None = None,
        reauthenticate: Callable[[], None] | None = None,
        limiter: RateLimiter | None = None,
        on_event: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._rng: RandomSource = rng or random.Random()  # jitter, not cryptography
        self._probe = probe
        self._reauthenticate = reauthenticate
        self._limiter = limiter
        self._on_event = on_event

    def call(
        self,
        fn: Callable[[], T],
        *,
        service: str,
        operation: str = "request",
        idempotent: bool = True,
        find_existing: Callable[[], T | None] | None = None,
        deadline: float | None = None,
    ) -> T:
        """Run `fn` until it succeeds, fails permanently, or the budget/deadline runs out.

        For a non-idempotent `fn` (creates), a failure after which the request may have been applied is
        never resent blindly: `find_existing` (name + client token lookup) runs first and its result is
        adopted if found; without `find_existing` the call fails instead of resending. `deadline`
        overrides the policy's for this call. Failures are raised as CloudError subclasses.
        """
        limit = deadline if deadline is not None else self.policy.deadline
        return _Call(
            self,
            fn,
            service=service,
            operation=operation,
            is_idempotent=idempotent,
            find_existing=find_existing,
            limit=limit,
        ).run()

    # -- used by _Call --------------------------------------------------------------------------------

    def _emit(self, event: RetryEvent) -> None:
        detail = f" in {event.delay:.2f}s" if event.delay is not None else ""
        cause = f": {event.error}" if event.error is not None else ""
        _LOG.info(
            "%s %s: %s (attempt %d)%s%s",
            event.service,
            event.operation,
            event.kind,
            event.attempt,
            detail,
            cause,
        )
        if self._on_event is not None:
            self._on_event(event)

    def _take_token(self, service: str) -> None:
        if self._limiter is not None:
            self._limiter.acquire(service)


class _Phase(StrEnum):
    SEND = "send"  # calling fn
    LOOKUP = "lookup"  # calling find_existing after an ambiguous failure


class _Call(Generic[T]):
    """The state of one call under the policy; raising ends it, returning a value ends it well."""

    def __init__(
        self,
        retrier: Retrier,
        fn: Callable[[], T],
        *,
        service: str,
        operation: str,
        is_idempotent: bool,
        find_existing: Callable[[], T | None] | None,
        limit: float | None,
    ) -> None:
        self.retrier = retrier
        self.policy = retrier.policy
        self.clock = retrier._clock
        self.fn = fn
        self.find_existing = find_existing
        self.service = service
        self.operation = operation
        self.is_idempotent = is_idempotent
        self.limit = limit
        self.deadline_at = self.clock.monotonic() + limit if limit is not None else None
        self.attempt = 1  # counted attempts; the re-auth resend and network-pause resumes are free
        self.lookup_failures = 0  # failed lookups have a budget of their own: they never use up sends
        self.has_reauthenticated = False
        self.paused = 0.0  # seconds paused waiting for the network, over the whole call
        self.must_look_up = False  # an ambiguous failure of a non-idempotent send: look before resending
        self.settle_until: float | None = None  # lookups repeat until then before a resend

    def run(self) -> T:
        while True:
            phase = _Phase.LOOKUP if self.must_look_up and self.find_existing is not None else _Phase.SEND
            try:
                if phase is _Phase.LOOKUP:
                    found = self._look_up()
                    if found is not None:
                        return found
                    if self._settle():
                        continue
                    if self._is_past_deadline():
                        raise Timeout(
                            f"{self.service}: {self.operation} did not succeed within its {self.limit:g}s "
                            f"deadline ({self.attempt} attempt(s)); the {self.operation} may have been "
                            "applied: look for it before trying again",
                            service=self.service,
                        )
                    self.must_look_up = False
                    self.settle_until = None
                    phase = _Phase.SEND
                self.retrier._take_token(self.service)
                return self.fn()
            except Exception as exc:
                if isinstance(exc, StackyardError) or not is_cloud_exception(exc):
                    raise  # ours on purpose, or a programming error: not the retrier's business
                adopted = self._handle(exc, phase)
                if adopted is not None:
                    return adopted

    def _look_up(self) -> T | None:
        assert self.find_existing is not None
        self._emit(RetryEventKind.LOOKING_UP)
        self.retrier._take_token(self.service)
        found = self.find_existing()
        if found is not None:
            self._emit(RetryEventKind.ADOPTED)
        return found

    def _settle(self) -> bool:
        """After a lookup that found nothing: wait to look again (True), or let the create be resent."""
        now = self.clock.monotonic()
        if self.settle_until is None:
            self.settle_until = now + self.policy.settle
        room = self.settle_until - now
        if self.deadline_at is not None:
            room = min(room, self.deadline_at - now)
        if room <= 0:
            return False
        step = min(self.policy.settle_poll, room)
        self._emit(RetryEventKind.SETTLING, delay=step)
        self.clock.sleep(step)
        return True

    def _handle(self, exc: Exception, phase: _Phase) -> T | None:
        """Act on one failure: return None to go round again, a resource to adopt it, or raise."""
        verdict = classify_failure(exc, now=self.clock.now())
        error = translate_error(exc, self.service)
        if phase is _Phase.SEND and verdict.is_ambiguous and not self.is_idempotent:
            self.must_look_up = True
        action = verdict.action
        if action is Action.REAUTHENTICATE:
            reauthenticate = self.retrier._reauthenticate
            if self.has_reauthenticated or reauthenticate is None:
                return self._give_up(error, exc, phase)
            if self._is_past_deadline():
                return self._give_up(error, exc, phase, is_timeout=True)
            self.has_reauthenticated = True
            self._emit(RetryEventKind.REAUTHENTICATING, error=error)
            try:
                reauthenticate()
            except Exception as auth_exc:
                if isinstance(auth_exc, StackyardError) or not is_cloud_exception(auth_exc):
                    raise
                raise translate_error(auth_exc, "identity") from auth_exc
            return None
        if action is Action.WAIT_FOR_NETWORK:
            probe = self.retrier._probe
            if probe is not None and not probe():
                return self._wait_for_network(probe, error, exc, phase)
            action = Action.RETRY  # no probe, or the network is up and only this endpoint refused
        if action is Action.RETRY:
            if self.must_look_up and self.find_existing is None:
                return self._give_up(error, exc, phase, note="not resent blindly")
            return self._back_off(verdict, error, exc, phase)
        return self._give_up(error, exc, phase)

    def _back_off(self, verdict: Verdict, error: CloudError, exc: Exception, phase: _Phase) -> T | None:
        is_lookup = phase is _Phase.LOOKUP
        if is_lookup and self.lookup_failures + 1 >= self.policy.attempts:
            note = f"gave up after {self.lookup_failures + 1} failed lookup(s)"
            return self._give_up(error, exc, phase, note=note)
        if not is_lookup and self.attempt >= self.policy.attempts:
            return self._give_up(error, exc, phase, note=f"gave up after {self.attempt} attempt(s)")
        if verdict.retry_after is not None:
            if verdict.retry_after > self.policy.max_retry_after:
                note = (
                    f"the service asked to retry after {verdict.retry_after:g}s, "
                    f"longer than the {self.policy.max_retry_after:g}s we wait"
                )
                return self._give_up(error, exc, phase, note=note)
            delay = verdict.retry_after
        else:
            # the delay grows with every try of this call, sends and lookups alike
            delay = self.policy.backoff_delay(self.attempt + self.lookup_failures, self.retrier._rng)
        if self.deadline_at is not None and self.clock.monotonic() + delay > self.deadline_at:
            return self._give_up(error, exc, phase, is_timeout=True)
        self._emit(RetryEventKind.RETRYING, delay=delay, error=error)
        self.clock.sleep(delay)
        if is_lookup:
            self.lookup_failures += 1
        else:
            self.attempt += 1
        return None

    def _wait_for_network(
        self, probe: Callable[[], bool], error: CloudError, exc: Exception, phase: _Phase
    ) -> T | None:
        """Poll `probe` without spending attempts; bounded by the deadline and max_network_pause."""
        self._emit(RetryEventKind.PAUSED, error=error)
        while True:
            room = self.policy.max_network_pause - self.paused
            if self.deadline_at is not None:
                room = min(room, self.deadline_at - self.clock.monotonic())
            if room <= 0:
                break
            step = min(self.policy.network_poll, room)
            self.clock.sleep(step)
            self.paused += step
            if probe():
                self._emit(RetryEventKind.RESUMED, delay=step)
                return None
        if self._is_past_deadline():
            return self._give_up(error, exc, phase, is_timeout=True)
        return self._give_up(error, exc, phase, note=f"the cloud stayed unreachable for {self.paused:g}s")

    def _give_up(
        self,
        error: CloudError,
        exc: Exception,
        phase: _Phase,
        *,
        note: str | None = None,
        is_timeout: bool = False,
    ) -> T | None:
        """Raise the final error, unless a closing lookup finds what an ambiguous send created."""
        notes = [note] if note else []
        if self.must_look_up:
            if phase is _Phase.SEND and self.find_existing is not None and not self._is_past_deadline():
                try:
                    found = self._look_up()
                except Exception as lookup_exc:
                    if isinstance(lookup_exc, StackyardError) or not is_cloud_exception(lookup_exc):
                        raise
                    notes.append(f"looking for it failed too ({translate_error(lookup_exc, self.service)})")
                else:
                    if found is not None:
                        return found
            notes.append(f"the {self.operation} may have been applied: look for it before trying again")
        if is_timeout:
            last = error.message.removeprefix(f"{self.service}: ")
            message = (
                f"{self.service}: {self.operation} did not succeed within its {self.limit:g}s deadline "
                f"({self.attempt} attempt(s)); last error: {last}"
            )
            raise Timeout(
                "; ".join([message, *notes]), service=self.service, request_id=error.request_id
            ) from exc
        if notes:
            error.message = "; ".join([error.message, *notes])
            error.args = (error.message,)
        raise error from exc

    def _is_past_deadline(self) -> bool:
        return self.deadline_at is not None and self.clock.monotonic() >= self.deadline_at

    def _emit(
        self, kind: RetryEventKind, *, delay: float | None = None, error: CloudError | None = None
    ) -> None:
        self.retrier._emit(
            RetryEvent(
                kind=kind,
                service=self.service,
                operation=self.operation,
                attempt=self.attempt,
                delay=delay,
                error=error,
            )
        )
