"""Retry policy: backoff, Retry-After, classification, and the Retrier over a scripted HTTP transport."""

from __future__ import annotations

import errno
import json
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.client import RemoteDisconnected

import pytest
import requests
import urllib3.exceptions as u3
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ksa_session
from openstack import exceptions as sdk_exc

from stackyard.cloud.clock import FakeClock
from stackyard.cloud.ratelimit import RateLimiter
from stackyard.cloud.retry import (
    Action,
    Retrier,
    RetryEvent,
    RetryEventKind,
    RetryPolicy,
    classify_failure,
    parse_retry_after,
)
from stackyard.errors import (
    BadRequest,
    CloudError,
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    QuotaExceeded,
    Timeout,
    Unauthorized,
    Unavailable,
)

URL = "http://cloud.test:8774/v2.1/servers"
WALL = datetime(2025, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------------------------------
# A scripted transport under a real keystoneauth Session, so exceptions are the ones it really raises
# --------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)

    def build(self, request: requests.PreparedRequest) -> requests.Response:
        response = requests.Response()
        response.status_code = self.status
        response.reason = HTTPStatus(self.status).phrase
        response.url = request.url or URL
        response.request = request
        response.headers.update({"x-openstack-request-id": f"req-{self.status}", **self.headers})
        if self.body is not None:
            response.headers.setdefault("Content-Type", "application/json")
            response._content = json.dumps(self.body).encode()
        else:
            response._content = b""
        return response


Step = Reply | BaseException | Callable[[requests.PreparedRequest], "Reply | BaseException"]


class ScriptedTransport(requests.adapters.BaseAdapter):
    """Plays `steps` in order (replies, exceptions to raise, or functions of the request)."""

    def __init__(self, *steps: Step, on_send: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.steps = list(steps)
        self.sent: list[requests.PreparedRequest] = []
        self.on_send = on_send

    def send(self, request: requests.PreparedRequest, *args: object, **kwargs: object) -> requests.Response:
        self.sent.append(request)
        if self.on_send is not None:
            self.on_send()
        assert self.steps, f"unexpected extra request {request.method} {request.url}"
        step = self.steps.pop(0)
        if callable(step) and not isinstance(step, BaseException):
            step = step(request)
        if isinstance(step, BaseException):
            raise step
        return step.build(request)

    def close(self) -> None:
        pass

    def methods(self) -> list[str]:
        return [str(r.method) for r in self.sent]


def keystone_session(transport: ScriptedTransport) -> ksa_session.Session:
    http = requests.Session()
    http.mount("http://", transport)
    return ksa_session.Session(session=http)


def _within(outer: BaseException, inner: BaseException) -> BaseException:
    """`outer` as if raised while handling `inner`, as requests does around urllib3 errors."""
    outer.__context__ = inner
    return outer


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def refused() -> BaseException:
    sock = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    new_conn = _caused(u3.NewConnectionError(None, f"Failed to establish a new connection: {sock}"), sock)
    retry = u3.MaxRetryError(None, URL, new_conn)
    return _within(requests.exceptions.ConnectionError(retry), retry)


def dns_failure() -> BaseException:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    name = _caused(u3.NameResolutionError("cloud.test", None, gai), gai)
    retry = u3.MaxRetryError(None, URL, name)
    return _within(requests.exceptions.ConnectionError(retry), retry)


def no_route() -> BaseException:
    sock = OSError(errno.EHOSTUNREACH, "No route to host")
    new_conn = _caused(u3.NewConnectionError(None, f"Failed to establish a new connection: {sock}"), sock)
    retry = u3.MaxRetryError(None, URL, new_conn)
    return _within(requests.exceptions.ConnectionError(retry), retry)


def connect_timeout() -> BaseException:
    reason = u3.ConnectTimeoutError(None, "Connection to cloud.test timed out. (connect timeout=5)")
    retry = u3.MaxRetryError(None, URL, reason)
    return _within(requests.exceptions.ConnectTimeout(retry), retry)


def read_timeout() -> BaseException:
    reason = u3.ReadTimeoutError(None, URL, "Read timed out. (read timeout=30)")
    return _within(requests.exceptions.ReadTimeout(reason), reason)


def reset() -> BaseException:
    proto = u3.ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection"))
    return _within(requests.exceptions.ConnectionError(proto), proto)


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@dataclass
class Harness:
    """A Retrier wired to a fake clock, mid-range jitter, and counters for its callbacks."""

    clock: FakeClock = field(default_factory=lambda: FakeClock(wall=WALL))
    events: list[RetryEvent] = field(default_factory=list)
    reauths: int = 0
    probes: list[bool] = field(default_factory=list)  # answers the probe gives, in order
    probe_calls: int = 0

    def retrier(
        self,
        policy: RetryPolicy | None = None,
        *,
        with_probe: bool = False,
        with_reauth: bool = True,
        limiter: RateLimiter | None = None,
    ) -> Retrier:
        return Retrier(
            policy or RetryPolicy(settle=0.0),  # tests of the settle window set their own
            clock=self.clock,
            rng=FixedRandom(0.5),
            probe=self.probe if with_probe else None,
            reauthenticate=self.reauthenticate if with_reauth else None,
            limiter=limiter,
            on_event=self.events.append,
        )

    def probe(self) -> bool:
        self.probe_calls += 1
        return self.probes.pop(0) if self.probes else True

    def reauthenticate(self) -> None:
        self.reauths += 1

    def kinds(self) -> list[RetryEventKind]:
        return [event.kind for event in self.events]


@pytest.fixture
def harness() -> Harness:
    return Harness()


def get(transport: ScriptedTransport) -> Callable[[], int]:
    session = keystone_session(transport)
    return lambda: session.get(URL).status_code


def sdk_get(transport: ScriptedTransport) -> Callable[[], int]:
    """The openstacksdk path: keystoneauth with raise_exc=False, then the SDK raises from the response."""
    session = keystone_session(transport)

    def call() -> int:
        response = session.get(URL, raise_exc=False)
        sdk_exc.raise_from_response(response)
        return response.status_code

    return call


# --------------------------------------------------------------------------------------------------
# RetryPolicy and backoff
# --------------------------------------------------------------------------------------------------


def test_policy_defaults_match_the_issue() -> None:
    policy = RetryPolicy()
    assert (policy.attempts, policy.initial, policy.multiplier, policy.cap) == (5, 2.0, 2.0, 30.0)
    assert policy.deadline is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"initial": -1},
        {"multiplier": 0.5},
        {"cap": -2},
        {"deadline": 0},
        {"network_poll": 0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy()
    top = FixedRandom(1.0)  # random() never returns 1.0, but it shows the ceiling
    assert [policy.backoff_delay(n, top) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert policy.backoff_delay(10_000, top) == 30.0


def test_backoff_is_full_jitter_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy()
    rng = random.Random(1234)
    delays = [policy.backoff_delay(4, rng) for _ in range(200)]
    assert all(0.0 <= d < 16.0 for d in delays)
    assert min(delays) < 2.0 and max(delays) > 14.0  # spread over the whole range, not clustered
    assert policy.backoff_delay(3, FixedRandom(0.0)) == 0.0


def test_backoff_respects_custom_parameters_and_rejects_attempt_zero() -> None:
    policy = RetryPolicy(initial=0.5, multiplier=3.0, cap=10.0)
    top = FixedRandom(1.0)
    assert [policy.backoff_delay(n, top) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 10.0]
    assert RetryPolicy(initial=0.0).backoff_delay(9, top) == 0.0
    with pytest.raises(ValueError):
        policy.backoff_delay(0, top)


# --------------------------------------------------------------------------------------------------
# Retry-After
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("Wed, 01 Jan 2025 00:01:30 GMT", 90.0),  # IMF-fixdate
        ("Wednesday, 01-Jan-25 00:00:45 GMT", 45.0),  # obsolete RFC 850 form
        ("Wed Jan  1 00:00:05 2025", 5.0),  # asctime form, no zone: GMT
        ("Tue, 31 Dec 2024 23:59:00 GMT", 0.0),  # already past: retry now
        ("Mon, 01 Jan 1990 00:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(value: str, expected: float) -> None:
    assert parse_retry_after(value, WALL) == expected


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "-5", "+5", "1.5", "Wed, 99 Foo 2025", "12 monkeys"]
)
def test_parse_retry_after_rejects_garbage(value: str | None) -> None:
    assert parse_retry_after(value, WALL) is None


# --------------------------------------------------------------------------------------------------
# Classification of real keystoneauth1 / openstacksdk exceptions
# --------------------------------------------------------------------------------------------------


def ksa_error(status: int, headers: dict[str, str] | None = None, body: object = None) -> BaseException:
    transport = ScriptedTransport(Reply(status, body, headers or {}))
    with pytest.raises(ksa_exc.HttpError) as info:
        keystone_session(transport).post(URL, json={})
    return info.value


def sdk_error(status: int, headers: dict[str, str] | None = None, body: object = None) -> BaseException:
    transport = ScriptedTransport(Reply(status, body, headers or {}))
    with pytest.raises(sdk_exc.HttpException) as info:
        sdk_get(transport)()
    return info.value


def transport_error(failure: BaseException) -> BaseException:
    with pytest.raises(ksa_exc.ConnectionError) as info:
        keystone_session(ScriptedTransport(failure)).get(URL)
    return info.value


@pytest.mark.parametrize("make", [ksa_error, sdk_error], ids=["keystoneauth", "openstacksdk"])
@pytest.mark.parametrize(
    ("status", "action", "is_ambiguous"),
    [
        (408, Action.RETRY, False),
        (429, Action.RETRY, False),
        (502, Action.RETRY, True),
        (503, Action.RETRY, True),
        (504, Action.RETRY, True),
        (401, Action.REAUTHENTICATE, False),
        (400, Action.FAIL, False),
        (403, Action.FAIL, False),
        (404, Action.FAIL, False),
        (405, Action.FAIL, False),
        (409, Action.FAIL, False),
        (413, Action.FAIL, False),
        (415, Action.FAIL, False),
        (422, Action.FAIL, False),
        (500, Action.FAIL, True),
        (501, Action.FAIL, True),
    ],
)
def test_classify_http_status(
    make: Callable[[int], BaseException], status: int, action: Action, is_ambiguous: bool
) -> None:
    verdict = classify_failure(make(status), now=WALL)
    assert (verdict.action, verdict.is_ambiguous) == (action, is_ambiguous)


@pytest.mark.parametrize("make", [ksa_error, sdk_error], ids=["keystoneauth", "openstacksdk"])
def test_classify_reads_retry_after_in_both_formats(make: Callable[..., BaseException]) -> None:
    assert classify_failure(make(429, {"Retry-After": "17"}), now=WALL).retry_after == 17.0
    dated = make(503, {"Retry-After": "Wed, 01 Jan 2025 00:00:30 GMT"})
    assert classify_failure(dated, now=WALL).retry_after == 30.0
    assert classify_failure(make(429, {"Retry-After": "later"}), now=WALL).retry_after is None
    assert classify_failure(make(429), now=WALL).retry_after is None


def test_classify_uses_keystoneauth_retry_after_when_no_response_is_attached() -> None:
    exc = ksa_exc.TooManyRequests(retry_after=9)
    assert classify_failure(exc, now=WALL).retry_after == 9.0


@pytest.mark.parametrize(
    ("failure", "action", "is_ambiguous"),
    [
        (refused, Action.WAIT_FOR_NETWORK, False),
        (dns_failure, Action.WAIT_FOR_NETWORK, False),
        (no_route, Action.WAIT_FOR_NETWORK, False),
        (connect_timeout, Action.WAIT_FOR_NETWORK, False),
        (read_timeout, Action.RETRY, True),
        (reset, Action.RETRY, True),
    ],
)
def test_classify_transport_failures_through_keystoneauth(
    failure: Callable[[], BaseException], action: Action, is_ambiguous: bool
) -> None:
    exc = transport_error(failure())
    assert isinstance(exc, (ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout))
    verdict = classify_failure(exc, now=WALL)
    assert (verdict.action, verdict.is_ambiguous) == (action, is_ambiguous)


def test_classify_tls_failure_is_permanent() -> None:
    ssl_failure = requests.exceptions.SSLError(u3.SSLError("CERTIFICATE_VERIFY_FAILED"))
    assert classify_failure(transport_error(ssl_failure), now=WALL).action is Action.FAIL


def test_classify_sees_through_an_sdk_exception_wrapping_a_connect_failure() -> None:
    inner = transport_error(refused())
    try:
        try:
            raise inner
        except ksa_exc.ClientException as e:
            raise sdk_exc.SDKException(str(e))  # noqa: B904 - openstacksdk's Connection.authorize does this
    except sdk_exc.SDKException as wrapped:
        assert classify_failure(wrapped, now=WALL).action is Action.WAIT_FOR_NETWORK


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("x"), NotFound("gone"), Unavailable("ours")])
def test_classify_fails_fast_on_non_cloud_and_own_errors(exc: BaseException) -> None:
    assert classify_failure(exc, now=WALL).action is Action.FAIL


def test_mfa_receipt_401_is_not_reauthenticated() -> None:
    response = Reply(
        401,
        {
            "receipt": {"methods": ["password"], "expires_at": "2025-01-01T00:05:00.000000Z"},
            "required_auth_methods": [["password", "totp"]],
        },
        {"Openstack-Auth-Receipt": "r-1"},
    ).build(requests.Request("POST", URL).prepare())
    exc = ksa_exc.MissingAuthMethods(response)
    assert classify_failure(exc, now=WALL).action is Action.FAIL


# --------------------------------------------------------------------------------------------------
# Retrier: status codes
# --------------------------------------------------------------------------------------------------


def test_success_needs_no_retry(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(200))
    assert harness.retrier().call(get(transport), service="compute") == 200
    assert harness.clock.sleeps == [] and len(transport.sent) == 1 and harness.events == []


@pytest.mark.parametrize("path", [get, sdk_get], ids=["keystoneauth", "openstacksdk"])
@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_transient_statuses_are_retried_with_backoff(
    harness: Harness, path: Callable[[ScriptedTransport], Callable[[], int]], status: int
) -> None:
    transport = ScriptedTransport(Reply(status), Reply(status), Reply(200))
    assert harness.retrier().call(path(transport), service="compute") == 200
    assert len(transport.sent) == 3
    assert harness.clock.sleeps == [1.0, 2.0]  # half of 2 s, then half of 4 s
    assert harness.kinds() == [RetryEventKind.RETRYING, RetryEventKind.RETRYING]
    assert [e.attempt for e in harness.events] == [1, 2]


@pytest.mark.parametrize("path", [get, sdk_get], ids=["keystoneauth", "openstacksdk"])
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"badRequest": {"message": "Invalid flavorRef", "code": 400}}, BadRequest),
        (403, {"forbidden": {"message": "Policy does not allow this", "code": 403}}, Forbidden),
        (404, {"itemNotFound": {"message": "Flavor m1.huge could not be found.", "code": 404}}, NotFound),
        (409, {"conflictingRequest": {"message": "Instance is locked", "code": 409}}, Conflict),
        (
            413,
            {
                "overLimit": {
                    "message": "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded"
                }
            },
            QuotaExceeded,
        ),
        (415, None, BadRequest),
        (500, None, Unavailable),
        (501, None, Unavailable),
    ],
)
def test_permanent_statuses_are_never_retried(
    harness: Harness,
    path: Callable[[ScriptedTransport], Callable[[], int]],
    status: int,
    body: object,
    expected: type[CloudError],
) -> None:
    transport = ScriptedTransport(Reply(status, body), Reply(200))
    with pytest.raises(expected) as info:
        harness.retrier().call(path(transport), service="compute")
    assert len(transport.sent) == 1 and harness.clock.sleeps == []
    assert type(info.value) is expected
    assert info.value.status_code == status
    assert info.value.request_id == f"req-{status}"
    assert info.value.service == "compute"
    if body is not None:
        message = next(iter(body.values()))["message"]
        assert message in str(info.value)


def test_attempts_are_bounded(harness: Harness) -> None:
    transport = ScriptedTransport(*[Reply(503)] * 5, Reply(200))
    with pytest.raises(Unavailable) as info:
        harness.retrier().call(get(transport), service="compute")
    assert len(transport.sent) == 5
    assert harness.clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert "gave up after 5 attempt(s)" in str(info.value)
    assert info.value.request_id == "req-503"


def test_single_attempt_policy_does_not_retry(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(503), Reply(200))
    with pytest.raises(Unavailable):
        harness.retrier(RetryPolicy(attempts=1)).call(get(transport), service="compute")
    assert len(transport.sent) == 1


def test_non_cloud_exceptions_propagate_untouched(harness: Harness) -> None:
    calls = 0

    def buggy() -> int:
        nonlocal calls
        calls += 1
        raise KeyError("flavor")

    with pytest.raises(KeyError):
        harness.retrier().call(buggy, service="compute")
    assert calls == 1


def test_stackyard_errors_raised_by_the_call_pass_through(harness: Harness) -> None:
    mine = Unavailable("decided upstream")

    def fn() -> int:
        raise mine

    with pytest.raises(Unavailable) as info:
        harness.retrier().call(fn, service="compute")
    assert info.value is mine and harness.clock.sleeps == []


# --------------------------------------------------------------------------------------------------
# Retrier: Retry-After
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [
        ("7", 7.0),
        ("Wed, 01 Jan 2025 00:00:12 GMT", 12.0),
        ("Tue, 31 Dec 2024 00:00:00 GMT", 0.0),  # a date in the past: go now
        ("whenever", 1.0),  # garbage: fall back to the backoff
        ("-3", 1.0),  # negative: fall back to the backoff
    ],
)
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(
    harness: Harness, status: int, retry_after: str, expected_sleep: float
) -> None:
    transport = ScriptedTransport(Reply(status, headers={"Retry-After": retry_after}), Reply(200))
    assert harness.retrier().call(get(transport), service="compute") == 200
    assert harness.clock.sleeps == [expected_sleep]


def test_retry_after_longer_than_we_wait_gives_up_at_once(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(429, headers={"Retry-After": "3600"}), Reply(200))
    with pytest.raises(Unavailable) as info:
        harness.retrier(RetryPolicy(max_retry_after=60)).call(get(transport), service="compute")
    assert harness.clock.sleeps == [] and len(transport.sent) == 1
    assert "3600" in str(info.value)


# --------------------------------------------------------------------------------------------------
# Retrier: deadline
# --------------------------------------------------------------------------------------------------


def test_deadline_stops_retrying_before_sleeping_past_it(harness: Harness) -> None:
    transport = ScriptedTransport(*[Reply(503)] * 10)
    with pytest.raises(Timeout) as info:
        harness.retrier(RetryPolicy(attempts=100, deadline=10)).call(
            get(transport), service="compute", operation="list servers"
        )
    # delays 1, 2, 4 end at t=7; the next (8 s) would end at 15 > 10
    assert harness.clock.sleeps == [1.0, 2.0, 4.0]
    assert len(transport.sent) == 4
    assert harness.clock.monotonic() <= 10
    error = info.value
    assert (
        "list servers" in str(error) and "10s deadline" in str(error) and "Service Unavailable" in str(error)
    )
    assert error.request_id == "req-503" and error.service == "compute"
    assert isinstance(error.__cause__, ksa_exc.ServiceUnavailable)


def test_time_spent_inside_calls_counts_against_the_deadline(harness: Harness) -> None:
    transport = ScriptedTransport(
        Reply(503), Reply(503), Reply(200), on_send=lambda: harness.clock.advance(4.5)
    )
    with pytest.raises(Timeout):
        harness.retrier(RetryPolicy(deadline=10)).call(get(transport), service="compute")
    # t=4.5 fail, sleep 1 -> 5.5, t=10 fail, the next 2 s delay would pass the deadline
    assert len(transport.sent) == 2 and harness.clock.sleeps == [1.0]


def test_per_call_deadline_overrides_the_policy(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(503), Reply(503), Reply(200))
    with pytest.raises(Timeout):
        harness.retrier(RetryPolicy(deadline=600)).call(get(transport), service="compute", deadline=2.5)
    assert harness.clock.sleeps == [1.0]


def test_retry_after_beyond_the_deadline_times_out_without_sleeping(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(503, headers={"Retry-After": "30"}), Reply(200))
    with pytest.raises(Timeout):
        harness.retrier(RetryPolicy(deadline=20)).call(get(transport), service="compute")
    assert harness.clock.sleeps == []


# --------------------------------------------------------------------------------------------------
# Retrier: re-authentication
# --------------------------------------------------------------------------------------------------


class Tokens:
    """A token that expires: requests with the old one get 401 until reauthenticate() renews it."""

    def __init__(self) -> None:
        self.current = "old"
        self.renewals = 0

    def renew(self) -> None:
        self.renewals += 1
        self.current = f"new-{self.renewals}"

    def reply(self, request: requests.PreparedRequest) -> Reply:
        if request.headers.get("X-Auth-Token") == "old":
            return Reply(
                401, {"error": {"code": 401, "message": "The request you have made requires authentication."}}
            )
        return Reply(200)


def test_401_reauthenticates_once_then_succeeds(harness: Harness) -> None:
    tokens = Tokens()
    transport = ScriptedTransport(tokens.reply, tokens.reply)
    session = keystone_session(transport)
    retrier = Retrier(RetryPolicy(attempts=1), clock=harness.clock, reauthenticate=tokens.renew)

    status = retrier.call(
        lambda: session.get(URL, headers={"X-Auth-Token": tokens.current}).status_code, service="compute"
    )

    assert status == 200 and tokens.renewals == 1
    assert [r.headers["X-Auth-Token"] for r in transport.sent] == ["old", "new-1"]
    assert harness.clock.sleeps == []  # no backoff and no attempt spent on token expiry


def test_second_401_fails_with_unauthorized(harness: Harness) -> None:
    transport = ScriptedTransport(
        Reply(401, {"error": {"code": 401, "message": "The request you have made requires authentication."}}),
        Reply(401, {"error": {"code": 401, "message": "The request you have made requires authentication."}}),
        Reply(200),
    )
    with pytest.raises(Unauthorized) as info:
        harness.retrier().call(get(transport), service="compute")
    assert harness.reauths == 1 and len(transport.sent) == 2
    assert "requires authentication" in str(info.value)
    assert harness.kinds() == [RetryEventKind.REAUTHENTICATING]


def test_401_without_a_reauthenticate_callback_fails_at_once(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(401), Reply(200))
    with pytest.raises(Unauthorized):
        harness.retrier(with_reauth=False).call(get(transport), service="compute")
    assert len(transport.sent) == 1


def test_reauth_is_once_per_call_not_once_per_retrier(harness: Harness) -> None:
    retrier = harness.retrier()
    for _ in range(2):
        transport = ScriptedTransport(Reply(401), Reply(200))
        assert retrier.call(get(transport), service="compute") == 200
    assert harness.reauths == 2


def test_reauth_then_transient_failures_still_use_the_budget(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(401), Reply(503), Reply(200))
    assert harness.retrier(RetryPolicy(attempts=2)).call(get(transport), service="compute") == 200
    assert harness.reauths == 1 and harness.clock.sleeps == [1.0]


# --------------------------------------------------------------------------------------------------
# Retrier: network pause
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [refused, dns_failure, no_route, connect_timeout])
def test_unreachable_cloud_pauses_then_resumes_without_spending_attempts(
    harness: Harness, failure: Callable[[], BaseException]
) -> None:
    harness.probes = [False, False, False, True]
    transport = ScriptedTransport(failure(), Reply(200))
    policy = RetryPolicy(attempts=1, network_poll=5)  # one attempt: any budget spent would fail the call

    assert harness.retrier(policy, with_probe=True).call(get(transport), service="compute") == 200

    assert harness.clock.sleeps == [5.0, 5.0, 5.0]  # polled, not backed off
    assert harness.probe_calls == 4  # the first answer (False) confirmed the outage
    assert harness.kinds() == [RetryEventKind.PAUSED, RetryEventKind.RESUMED]
    assert len(transport.sent) == 2


def test_budget_is_intact_after_a_long_network_pause(harness: Harness) -> None:
    harness.probes = [False] * 20 + [True]
    transport = ScriptedTransport(refused(), Reply(503), Reply(200))
    policy = RetryPolicy(attempts=2, network_poll=5)
    assert harness.retrier(policy, with_probe=True).call(get(transport), service="compute") == 200
    assert harness.clock.sleeps == [5.0] * 20 + [1.0]  # the 503 still gets the first backoff step
    retrying = [e for e in harness.events if e.kind is RetryEventKind.RETRYING]
    assert [e.attempt for e in retrying] == [1]


def test_network_pause_is_bounded_by_the_deadline(harness: Harness) -> None:
    harness.probes = [False] * 100
    transport = ScriptedTransport(refused(), Reply(200))
    policy = RetryPolicy(deadline=12, network_poll=5)
    with pytest.raises(Timeout) as info:
        harness.retrier(policy, with_probe=True).call(get(transport), service="compute")
    assert harness.clock.sleeps == [5.0, 5.0, 2.0]
    assert harness.clock.monotonic() == 12.0
    assert len(transport.sent) == 1
    assert "Connection refused" in str(info.value)


def test_network_pause_is_bounded_in_total_without_a_deadline(harness: Harness) -> None:
    # Pauses add up over the whole call: 4 s in the first, then 4 + 2 s in the second.
    transport = ScriptedTransport(refused(), refused(), Reply(200))
    policy = RetryPolicy(network_poll=4, max_network_pause=10)
    harness.probes = [False, True, False, False, False]
    with pytest.raises(Unavailable) as info:
        harness.retrier(policy, with_probe=True).call(get(transport), service="compute")
    assert harness.clock.sleeps == [4.0, 4.0, 2.0]
    assert "unreachable for 10s" in str(info.value)
    assert len(transport.sent) == 2


def test_without_a_probe_unreachable_spends_the_retry_budget(harness: Harness) -> None:
    transport = ScriptedTransport(refused(), refused(), Reply(200))
    with pytest.raises(Unavailable):
        harness.retrier(RetryPolicy(attempts=2)).call(get(transport), service="compute")
    assert harness.clock.sleeps == [1.0] and len(transport.sent) == 2


def test_reachable_network_but_refusing_endpoint_is_an_ordinary_retry(harness: Harness) -> None:
    harness.probes = [True]
    transport = ScriptedTransport(refused(), Reply(200))
    assert harness.retrier(with_probe=True).call(get(transport), service="compute") == 200
    assert harness.clock.sleeps == [1.0]
    assert harness.kinds() == [RetryEventKind.RETRYING]


def test_ambiguous_failures_do_not_pause_for_the_network(harness: Harness) -> None:
    transport = ScriptedTransport(reset(), Reply(200))
    assert harness.retrier(with_probe=True).call(get(transport), service="compute") == 200
    assert harness.probe_calls == 0 and harness.clock.sleeps == [1.0]


# --------------------------------------------------------------------------------------------------
# Retrier: non-idempotent calls (creates)
# --------------------------------------------------------------------------------------------------


@dataclass
class Cloud:
    """Server create over the scripted transport, plus a lookup by name + client token."""

    transport: ScriptedTransport
    existing: list[str | None] = field(default_factory=list)  # what successive lookups find
    lookups: int = 0

    def create(self) -> str:
        keystone_session(self.transport).post(URL, json={"server": {"name": "web-1"}})
        return "created"

    def find(self) -> str | None:
        self.lookups += 1
        return self.existing.pop(0) if self.existing else None


@pytest.mark.parametrize(
    "failure",
    [read_timeout, reset, lambda: None],
    ids=["read-timeout", "connection-reset", "503-on-post"],
)
def test_ambiguous_create_failure_adopts_the_existing_resource(
    harness: Harness, failure: Callable[[], BaseException | None]
) -> None:
    first = failure() or Reply(503)
    cloud = Cloud(ScriptedTransport(first, Reply(202)), existing=["adopted-uuid"])
    result = harness.retrier().call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "adopted-uuid"
    assert cloud.transport.methods() == ["POST"]  # never resent
    assert cloud.lookups == 1
    assert harness.kinds() == [RetryEventKind.RETRYING, RetryEventKind.LOOKING_UP, RetryEventKind.ADOPTED]


def test_ambiguous_create_failure_resends_when_nothing_was_created(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), Reply(202)), existing=[None])
    result = harness.retrier().call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "created"
    assert cloud.transport.methods() == ["POST", "POST"] and cloud.lookups == 1


@pytest.mark.parametrize(
    "first",
    [refused, lambda: Reply(429), lambda: Reply(408)],
    ids=["refused", "429", "408"],
)
def test_unambiguous_create_failure_is_resent_without_lookup(
    harness: Harness, first: Callable[[], BaseException | Reply]
) -> None:
    cloud = Cloud(ScriptedTransport(first(), Reply(202)))
    result = harness.retrier().call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "created" and cloud.lookups == 0


def test_ambiguous_create_failure_without_lookup_is_never_resent(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), Reply(202)))
    with pytest.raises(Timeout) as info:
        harness.retrier().call(cloud.create, service="compute", operation="create server", idempotent=False)
    assert cloud.transport.methods() == ["POST"] and harness.clock.sleeps == []
    assert "may have been applied" in str(info.value)


def test_idempotent_call_is_simply_resent_after_an_ambiguous_failure(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), Reply(202)))
    assert harness.retrier().call(cloud.create, service="compute", find_existing=cloud.find) == "created"
    assert cloud.lookups == 0 and cloud.transport.methods() == ["POST", "POST"]


def test_failed_lookup_is_retried_instead_of_resending(harness: Harness) -> None:
    transport = ScriptedTransport(read_timeout(), Reply(503), Reply(200, {"servers": [{"id": "s-1"}]}))
    session = keystone_session(transport)

    def create() -> str:
        session.post(URL, json={"server": {"name": "web-1"}})
        return "created"

    def find() -> str | None:
        servers = session.get(URL + "?name=web-1").json()["servers"]
        return str(servers[0]["id"]) if servers else None

    result = harness.retrier().call(create, service="compute", idempotent=False, find_existing=find)
    assert result == "s-1"
    assert transport.methods() == ["POST", "GET", "GET"]
    assert harness.clock.sleeps == [1.0, 2.0]


def test_failed_lookups_do_not_use_up_the_sends(harness: Harness) -> None:
    # attempts=3: one send and three failed lookups would have exhausted a shared budget.
    found = Reply(200, {"servers": [{"id": "s-1"}]})
    transport = ScriptedTransport(read_timeout(), Reply(503), Reply(503), found)
    session = keystone_session(transport)

    def create() -> str:
        session.post(URL, json={"server": {"name": "web-1"}})
        return "created"

    def find() -> str | None:
        servers = session.get(URL + "?name=web-1").json()["servers"]
        return str(servers[0]["id"]) if servers else None

    result = harness.retrier(RetryPolicy(attempts=3)).call(
        create, service="compute", idempotent=False, find_existing=find
    )
    assert result == "s-1"
    assert transport.methods() == ["POST", "GET", "GET", "GET"]


def test_lookups_that_keep_failing_give_up_with_the_outcome_unknown(harness: Harness) -> None:
    transport = ScriptedTransport(read_timeout(), Reply(503), Reply(503), Reply(503))
    session = keystone_session(transport)

    def create() -> str:
        session.post(URL, json={"server": {"name": "web-1"}})
        return "created"

    def find() -> str | None:
        session.get(URL + "?name=web-1")
        return None

    with pytest.raises(Unavailable) as info:
        harness.retrier(RetryPolicy(attempts=3)).call(
            create, service="compute", operation="create server", idempotent=False, find_existing=find
        )
    assert transport.methods() == ["POST", "GET", "GET", "GET"]  # never resent
    assert "3 failed lookup(s)" in str(info.value) and "may have been applied" in str(info.value)


def test_exhausted_create_looks_up_one_last_time(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), read_timeout()), existing=[None, "late-uuid"])
    result = harness.retrier(RetryPolicy(attempts=2, settle=0.0)).call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "late-uuid"
    assert cloud.transport.methods() == ["POST", "POST"] and cloud.lookups == 2


def test_exhausted_create_with_nothing_found_says_the_outcome_is_unknown(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), read_timeout()))
    with pytest.raises(Timeout) as info:
        harness.retrier(RetryPolicy(attempts=2, settle=0.0)).call(
            cloud.create,
            service="compute",
            operation="create server",
            idempotent=False,
            find_existing=cloud.find,
        )
    assert cloud.lookups == 2
    assert "create server may have been applied" in str(info.value)


def test_a_create_still_running_in_the_service_is_adopted_once_it_appears(harness: Harness) -> None:
    # The first lookups miss: the timed-out request has not yet got as far as making the server.
    cloud = Cloud(ScriptedTransport(read_timeout(), Reply(202)), existing=[None, None, "late-uuid"])
    result = harness.retrier(RetryPolicy(settle=10.0, settle_poll=2.0)).call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "late-uuid"
    assert cloud.transport.methods() == ["POST"] and cloud.lookups == 3
    assert harness.clock.sleeps == [1.0, 2.0, 2.0]  # backoff, then two settle polls
    assert harness.kinds().count(RetryEventKind.SETTLING) == 2


def test_a_create_not_found_within_the_settle_window_is_resent(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), Reply(202)))
    result = harness.retrier(RetryPolicy(settle=5.0, settle_poll=2.0)).call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "created"
    assert cloud.transport.methods() == ["POST", "POST"]
    assert cloud.lookups == 4  # at 0, 2, 4 and 5 s into the window
    assert harness.clock.sleeps == [1.0, 2.0, 2.0, 1.0]


def test_each_ambiguous_failure_opens_a_new_settle_window(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), read_timeout(), Reply(202)))
    result = harness.retrier(RetryPolicy(settle=2.0, settle_poll=2.0)).call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "created"
    assert cloud.lookups == 4 and harness.clock.sleeps == [1.0, 2.0, 2.0, 2.0]


def test_the_settle_window_ends_at_the_deadline(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(read_timeout(), Reply(202)))
    with pytest.raises(Timeout, match="may have been applied"):
        harness.retrier(RetryPolicy(settle=60.0, settle_poll=2.0, deadline=4.0)).call(
            cloud.create,
            service="compute",
            operation="create server",
            idempotent=False,
            find_existing=cloud.find,
        )
    assert cloud.transport.methods() == ["POST"]  # never resent past the deadline
    assert harness.clock.monotonic() <= 4.0


def test_a_negative_settle_window_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="settle"):
        RetryPolicy(settle=-1.0)


def test_500_on_create_is_not_retried_but_is_looked_up(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(Reply(500), Reply(202)), existing=["half-made"])
    result = harness.retrier().call(
        cloud.create, service="compute", idempotent=False, find_existing=cloud.find
    )
    assert result == "half-made" and cloud.transport.methods() == ["POST"] and harness.clock.sleeps == []


def test_permanent_create_failure_is_not_looked_up(harness: Harness) -> None:
    cloud = Cloud(ScriptedTransport(Reply(403, {"forbidden": {"message": "Quota exceeded for instances"}})))
    with pytest.raises(QuotaExceeded):
        harness.retrier().call(cloud.create, service="compute", idempotent=False, find_existing=cloud.find)
    assert cloud.lookups == 0


# --------------------------------------------------------------------------------------------------
# Retrier: rate limit
# --------------------------------------------------------------------------------------------------


def test_every_send_takes_a_rate_limit_token(harness: Harness) -> None:
    limiter = RateLimiter({"compute": 1.0}, clock=harness.clock)
    transport = ScriptedTransport(Reply(503), Reply(200), Reply(200))
    retrier = harness.retrier(limiter=limiter)
    retrier.call(get(transport), service="compute")  # token 1 at t=0, backoff 1 s, token 2 due at t=1
    retrier.call(get(transport), service="compute")  # token 3 due at t=2: waits 1 s
    assert harness.clock.sleeps == [1.0, 1.0]
    assert harness.clock.monotonic() == 2.0


def test_seeded_jitter_is_reproducible() -> None:
    def run(seed: int) -> list[float]:
        clock = FakeClock()
        transport = ScriptedTransport(*[Reply(503)] * 4, Reply(200))
        Retrier(clock=clock, rng=random.Random(seed)).call(get(transport), service="compute")
        return clock.sleeps

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert all(0 <= d < c for d, c in zip(run(7), [2, 4, 8, 16], strict=True))


def test_retry_after_dates_are_read_against_the_injected_wall_clock() -> None:
    clock = FakeClock(wall=WALL + timedelta(seconds=10))
    transport = ScriptedTransport(
        Reply(429, headers={"Retry-After": "Wed, 01 Jan 2025 00:00:25 GMT"}), Reply(200)
    )
    Retrier(clock=clock).call(get(transport), service="compute")
    assert clock.sleeps == [15.0]


def test_failed_reauthentication_is_translated(harness: Harness) -> None:
    transport = ScriptedTransport(Reply(401), Reply(200))

    def reauthenticate() -> None:
        raise ksa_exc.Unauthorized(message="Invalid application credential")

    retrier = Retrier(clock=harness.clock, reauthenticate=reauthenticate)
    with pytest.raises(Unauthorized) as info:
        retrier.call(get(transport), service="compute")
    assert info.value.service == "identity" and "Invalid application credential" in str(info.value)
    assert len(transport.sent) == 1


def test_failed_version_discovery_is_retried() -> None:
    exc = sdk_exc.NotSupported(
        "The image service for x:RegionOne exists but does not have any supported versions."
    )
    assert classify_failure(exc, now=datetime(2026, 1, 1, tzinfo=UTC)).action is Action.RETRY
    other = sdk_exc.NotSupported("The feature is not supported")
    assert classify_failure(other, now=datetime(2026, 1, 1, tzinfo=UTC)).action is Action.FAIL
