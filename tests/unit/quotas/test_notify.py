"""The reclamation webhook against a real HTTP server on loopback: what it sends, and its failures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stackyard.errors import Unavailable
from stackyard.quotas.notify import WebhookNotifier


class Receiver(ThreadingHTTPServer):
    status = 204
    bodies: list[object]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(self.server.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: Receiver, query: str = "") -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/hook{query}"


def test_the_notice_is_posted_as_json(receiver: Receiver) -> None:
    WebhookNotifier(timeout=5)(url_of(receiver), {"event": "stackyard.quota.reclamation", "student_id": "s1"})
    assert receiver.bodies == [{"event": "stackyard.quota.reclamation", "student_id": "s1"}]


def test_a_refusal_is_unavailable_and_hides_the_url_query(receiver: Receiver) -> None:
    receiver.status = 500
    with pytest.raises(Unavailable) as raised:
        WebhookNotifier(timeout=5)(url_of(receiver, "?token=s3cret"), {"event": "x"})
    assert "HTTP 500" in str(raised.value) and "s3cret" not in str(raised.value)


def test_an_unreachable_receiver_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(Unavailable) as raised:
        WebhookNotifier(timeout=2)(f"http://127.0.0.1:{port}/hook?token=s3cret", {"event": "x"})
    assert "s3cret" not in str(raised.value)
