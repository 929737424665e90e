"""A loopback receiver for node configs: stores every POST body; can be told to fail or to stop."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_with: int | None = None  # answer this status instead of 200
        self.attempts = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.attempts += 1
                    status = receiver.fail_with or 200
                    if status == 200:
                        receiver.received.append(json.loads(body))
                        receiver.headers.append(dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/node-configs"

    def nodes(self) -> list[str]:
        with self._lock:
            return [str(body["nodeName"]) for body in self.received]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.headers.clear()
            self.attempts = 0

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
