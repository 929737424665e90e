"""The node config pusher: which answers are retried, what is sent, and that the secret stays hidden."""

from __future__ import annotations

import httpx
import pytest

from stackyard.errors import ValidationError
from stackyard.inventory.push import Endpoint, NodeConfigPusher, endpoint_of

URL = "https://agent.test/v1/node-configs"


def scripted(*answers: int | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text="nope" if answer >= 300 else "{}")

    return httpx.MockTransport(handle), seen


def pusher(transport: httpx.MockTransport, sleeps: list[float], **options: object) -> NodeConfigPusher:
    endpoint = Endpoint(URL, auth_header="Bearer s3cret", backoff=0.5, **options)  # type: ignore[arg-type]
    return NodeConfigPusher(endpoint, transport=transport, sleep=sleeps.append)


def test_retried_statuses_and_connection_errors_are_sent_again_until_accepted() -> None:
    transport, seen = scripted(503, httpx.ConnectError("refused"), 429, 200)
    sleeps: list[float] = []
    assert pusher(transport, sleeps).push({"nodeName": "n-1"}) is None
    assert len(seen) == 4 and len(sleeps) == 3
    assert all(0 <= delay <= 0.5 * 2**i for i, delay in enumerate(sleeps))  # full jitter, doubling
    assert seen[0].headers["Authorization"] == "Bearer s3cret"
    assert seen[0].headers["Content-Type"] == "application/json"
    assert seen[0].read() == b'{"nodeName":"n-1"}'


def test_a_client_error_is_not_retried_and_its_reason_is_returned() -> None:
    transport, seen = scripted(400)
    sleeps: list[float] = []
    reason = pusher(transport, sleeps).push({})
    assert reason is not None and "400" in reason and "nope" in reason
    assert len(seen) == 1 and sleeps == []


def test_giving_up_names_the_attempts_and_the_last_reason_without_the_secret() -> None:
    transport, seen = scripted(503, 503)
    p = pusher(transport, [], attempts=2)
    reason = p.push({})
    assert reason is not None and reason.startswith("gave up after 2 attempts") and "503" in reason
    assert "s3cret" not in reason and p.posts == 2 == len(seen)


def test_the_endpoint_never_shows_its_auth_header() -> None:
    endpoint = Endpoint(URL, auth_header="Bearer s3cret")
    assert "s3cret" not in repr(endpoint) and "s3cret" not in str(endpoint)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"url": "ftp://x"}, "endpoint.url"),
        ({}, "inventory.endpoints.agent.url"),
        ({"url": URL, "timeout": "soon"}, "inventory.endpoints.agent.timeout"),
        ({"url": URL, "insecure": "yes"}, "inventory.endpoints.agent.insecure"),
        ({"url": URL, "colour": 1}, "inventory.endpoints.agent.colour"),
        ({"url": URL, "auth_header_env": "NOT_SET_ANYWHERE"}, "inventory.endpoints.agent.auth_header_env"),
        ({"url": URL, "attempts": 0}, "endpoint.attempts"),
    ],
)
def test_bad_endpoint_settings_name_the_field(entry: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        endpoint_of("agent", entry, {})
    assert info.value.field == field


def test_the_auth_header_comes_from_the_environment() -> None:
    endpoint = endpoint_of(
        "agent",
        {"url": URL, "auth_header_env": "AGENT_AUTH", "insecure": True},
        {"AGENT_AUTH": "Bearer from-env"},
    )
    assert endpoint.auth_header == "Bearer from-env" and endpoint.insecure
