"""A fault-injecting HTTP reverse proxy on loopback, so tests can make a real OpenStack misbehave."""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http.client
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from stackyard.devcloud.access import Credentials
from stackyard.devcloud.context import Ports

LOOPBACK = "127.0.0.1"
PIECE = 64 * 1024
# JSON bodies up to this size are buffered and rewritten; bigger ones stream through untouched.
REWRITE_LIMIT = 4 * 1024 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
# http(s)://127.0.0.1:PORT or localhost:PORT, also with JSON-escaped slashes (http:\/\/...).
_URL = re.compile(rb"(https?:(?:\\?/){2})(?:127\.0\.0\.1|localhost):(\d+)")
_PROXIED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "COPY")


class FaultKind(StrEnum):
    """What the proxy did instead of relaying a request faithfully."""

    ERROR_503 = "503"
    TOO_MANY_429 = "429"
    RESET_BEFORE = "reset-before-forward"
    RESET_AFTER = "reset-after-forward"
    DELAY = "delay"
    CUT_BODY = "cut-body"  # the response starts, then the connection drops after `cut_after` bytes


class RetryAfter(StrEnum):
    """Which form of Retry-After injected 429 and 503 responses carry."""

    NONE = "none"
    SECONDS = "seconds"
    HTTP_DATE = "http-date"


@dataclass(frozen=True)
class FaultPlan:
    """Which requests to fault, how often and how; probabilities are per eligible request, summing to ≤ 1."""

    error_503: float = 0.0
    too_many_429: float = 0.0
    reset: float = 0.0
    # Share of resets done after the upstream handled the request (the case that duplicates creates).
    reset_after_forward: float = 0.5
    delay: float = 0.0
    delay_seconds: float = 0.0
    cut_body: float = 0.0
    cut_after: int = 1024 * 1024
    retry_after: RetryAfter = RetryAfter.NONE
    retry_after_seconds: int = 1
    methods: frozenset[str] = frozenset()  # empty: every method
    path_pattern: str = ""  # re.search on the path without query; empty: every path
    services: frozenset[str] = frozenset()  # upstream names; empty: every upstream
    spare_auth: bool = True  # never fault */auth/tokens, so clients can always log in
    max_consecutive: int | None = 2  # faults in a row per (service, method, path) before one passes
    seed: int = 0

    def __post_init__(self) -> None:
        rates = (
            self.error_503,
            self.too_many_429,
            self.reset,
            self.delay,
            self.cut_body,
            self.reset_after_forward,
        )
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError(f"probabilities must lie in [0, 1]: {self}")
        if self.error_503 + self.too_many_429 + self.reset + self.delay + self.cut_body > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to more than 1: {self}")
        if self.delay > 0 and self.delay_seconds <= 0:
            raise ValueError("a delay fault needs delay_seconds > 0")
        if self.retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must be >= 0")
        if self.max_consecutive is not None and self.max_consecutive < 1:
            raise ValueError("max_consecutive must be >= 1 (or None for no cap)")
        re.compile(self.path_pattern)

    def applies_to(self, service: str, method: str, path: str) -> bool:
        if self.spare_auth and path.rstrip("/").endswith("/auth/tokens"):
            return False
        if self.services and service not in self.services:
            return False
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return False
        return re.search(self.path_pattern, path) is not None

    def pick(self, roll: float) -> FaultKind | None:
        """The fault a uniform roll in [0, 1) lands on; resets come back as RESET_BEFORE."""
        edge = 0.0
        for kind, rate in (
            (FaultKind.ERROR_503, self.error_503),
            (FaultKind.TOO_MANY_429, self.too_many_429),
            (FaultKind.RESET_BEFORE, self.reset),
            (FaultKind.DELAY, self.delay),
            (FaultKind.CUT_BODY, self.cut_body),
        ):
            edge += rate
            if roll < edge:
                return kind
        return None


@dataclass(frozen=True)
class Exchange:
    """One request the proxy saw, and the fault it injected (None: relayed faithfully)."""

    service: str
    method: str
    path: str
    fault: FaultKind | None
    range: str | None = None  # the request's Range header, for tests of resumed downloads


def devcloud_upstreams(ports: Ports) -> dict[str, int]:
    """The devcloud's API services by name, as FaultProxy upstreams."""
    return {
        "keystone": ports.keystone,
        "nova": ports.nova,
        "neutron": ports.neutron,
        "glance": ports.glance,
        "cinder": ports.cinder,
        "placement": ports.placement,
        "swift": ports.swift_proxy,
    }


class FaultProxy:
    """One loopback listener per upstream: relays, points upstream URLs at the proxy, injects faults."""

    def __init__(
        self,
        upstreams: Mapping[str, int],
        plan: FaultPlan | None = None,
        *,
        upstream_timeout: float = 300.0,
    ) -> None:
        if len(set(upstreams.values())) != len(upstreams):
            raise ValueError(f"two upstreams share a port: {dict(upstreams)}")
        self.upstreams = dict(upstreams)
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._plan = plan or FaultPlan()
        self._rng = random.Random(self._plan.seed)
        self._streaks: Counter[tuple[str, str, str]] = Counter()
        self._counts: Counter[FaultKind] = Counter()
        self._log: list[Exchange] = []
        self._listeners: dict[str, _Listener] = {}
        self._proxy_port_of: dict[int, int] = {}  # upstream port -> proxy port
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._listeners:
            return self
        self._stopping.clear()
        for name, port in self.upstreams.items():
            listener = _Listener(self, name, port)
            self._listeners[name] = listener
            self._proxy_port_of[port] = listener.server_address[1]
            serve = functools.partial(listener.serve_forever, poll_interval=0.05)
            threading.Thread(target=serve, name=f"faultproxy-{name}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay fault
        for listener in self._listeners.values():
            listener.shutdown()
            listener.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)
        self._listeners.clear()
        self._proxy_port_of.clear()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------

    def port_for(self, name: str) -> int:
        return self._listeners[name].server_address[1]

    def url_for(self, name: str, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.port_for(name)}{path}"

    def auth_url(self, path: str = "/v3", keystone: str = "keystone") -> str:
        return self.url_for(keystone, path)

    def rewrite_bytes(self, data: bytes) -> bytes:
        """Point every loopback URL on an upstream port at the proxy port in front of it."""
        mapping = dict(self._proxy_port_of)

        def swap(match: re.Match[bytes]) -> bytes:
            proxied = mapping.get(int(match[2]))
            return match[0] if proxied is None else match[1] + b"%s:%d" % (LOOPBACK.encode(), proxied)

        return _URL.sub(swap, data)

    def rewrite_url(self, url: str) -> str:
        return self.rewrite_bytes(url.encode("latin-1")).decode("latin-1")

    # Any: the entry is a YAML-like document, meant to be splatted into openstack.connect(**entry).
    def clouds_entry(self, credentials: Credentials) -> dict[str, Any]:
        """A clouds.yaml cloud entry (also fit for openstack.connect(**entry)) logging in via the proxy."""
        return {
            "auth": {
                "auth_url": self.rewrite_url(credentials.auth_url),
                "username": credentials.username,
                "password": credentials.password,
                "project_name": credentials.project_name,
                "user_domain_name": credentials.user_domain_name,
                "project_domain_name": credentials.project_domain_name,
            },
            "auth_type": "password",
            "identity_api_version": "3",
            "region_name": credentials.region_name,
            "interface": "public",
        }

    # -- plan, counters, log ---------------------------------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Switch plans; reseeds the RNG and forgets fault streaks so runs are reproducible."""
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)
            self._streaks.clear()

    @property
    def counts(self) -> Counter[FaultKind]:
        with self._lock:
            return Counter(self._counts)

    @property
    def log(self) -> list[Exchange]:
        with self._lock:
            return list(self._log)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self._streaks.clear()

    def _decide(
        self, service: str, method: str, path: str, range_header: str | None = None
    ) -> tuple[FaultKind | None, FaultPlan]:
        """The fault for this request, and the plan it came from (set_plan may race with requests)."""
        with self._lock:
            plan = self._plan
            fault: FaultKind | None = None
            if plan.applies_to(service, method, path):
                fault = plan.pick(self._rng.random())
                if fault is FaultKind.RESET_BEFORE and self._rng.random() < plan.reset_after_forward:
                    fault = FaultKind.RESET_AFTER
                key = (service, method, path)
                cap = plan.max_consecutive
                if fault is not None and cap is not None and self._streaks[key] >= cap:
                    fault = None
                self._streaks[key] = self._streaks[key] + 1 if fault is not None else 0
            if fault is not None:
                self._counts[fault] += 1
            self._log.append(Exchange(service, method, path, fault, range_header))
            return fault, plan

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped meanwhile; True when the proxy is stopping."""
        return self._stopping.wait(seconds)


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: FaultProxy, service: str, upstream_port: int) -> None:
        self.proxy = proxy
        self.service = service
        self.upstream_port = upstream_port
        super().__init__((LOOPBACK, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Listener

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, alive=False)

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read FaultProxy.log instead of stderr noise

    def _relay(self) -> None:
        fault, plan = self.server.proxy._decide(
            self.server.service, self.command, urlsplit(self.path).path, self.headers.get("Range")
        )
        try:
            if fault is FaultKind.RESET_BEFORE:
                self._reset()
            elif fault in (FaultKind.ERROR_503, FaultKind.TOO_MANY_429):
                for _ in self._request_body():
                    pass  # drain, so the kept-alive connection stays in sync
                self._send_injected(fault, plan)
            else:
                self._forward_and_answer(fault, plan)
        except (OSError, http.client.HTTPException, ValueError):
            self.close_connection = True  # client or upstream broke mid-exchange: nothing left to say

    def _forward_and_answer(self, fault: FaultKind | None, plan: FaultPlan) -> None:
        upstream = http.client.HTTPConnection(
            LOOPBACK, self.server.upstream_port, timeout=self.server.proxy.upstream_timeout
        )
        try:
            try:
                self._forward(upstream)
                response = upstream.getresponse()
            except ConnectionRefusedError as exc:
                self.close_connection = True
                self._send_simple(502, f"faultproxy: upstream {self.server.service} unreachable: {exc}", {})
                return
            if fault is FaultKind.RESET_AFTER:
                while response.read(PIECE):
                    pass  # let the upstream finish its answer, then the client never hears it
                self._reset()
                return
            if fault is FaultKind.DELAY and self.server.proxy._sleep(plan.delay_seconds):
                self._reset()
                return
            if fault is FaultKind.CUT_BODY:
                self._answer(response, limit=plan.cut_after)
                self._reset()
                return
            self._answer(response)
        finally:
            upstream.close()

    def _forward(self, upstream: http.client.HTTPConnection) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length")
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                upstream.putheader(name, value)
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        elif length is not None:
            upstream.putheader("Content-Length", length)
        upstream.putheader("Connection", "close")
        upstream.endheaders()
        for piece in self._request_body():
            upstream.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            upstream.send(b"0\r\n\r\n")

    def _request_body(self) -> Iterator[bytes]:
        """The request body in pieces, de-chunked if the client sent it chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers are dropped
                    return
                yield from self._read_exact(size)
                self.rfile.readline(65537)  # CRLF closing the chunk
        else:
            yield from self._read_exact(int(self.headers.get("Content-Length") or 0))

    def _read_exact(self, size: int) -> Iterator[bytes]:
        while size > 0:
            piece = self.rfile.read(min(PIECE, size))
            if not piece:
                raise ConnectionError("client closed mid-body")
            size -= len(piece)
            yield piece

    def _answer(self, response: http.client.HTTPResponse, limit: int | None = None) -> None:
        """Relay the response; with `limit`, stop after that many body bytes (the caller then cuts)."""
        proxy = self.server.proxy
        headers = [(n, proxy.rewrite_url(v)) for n, v in response.getheaders() if n.lower() not in HOP_BY_HOP]
        if self.command == "HEAD" or response.status in (204, 304) or response.status < 200:
            length = response.getheader("Content-Length")
            self._start(response, headers + ([("Content-Length", length)] if length is not None else []))
            return
        first = b""
        content_type = (response.getheader("Content-Type") or "").lower()
        encoding = (response.getheader("Content-Encoding") or "identity").lower()
        if "json" in content_type and encoding == "identity":
            first = response.read(REWRITE_LIMIT + 1)
            if len(first) <= REWRITE_LIMIT:  # the whole body: rewrite it
                body = proxy.rewrite_bytes(first)
                self._start(response, [*headers, ("Content-Length", str(len(body)))])
                self.wfile.write(body)
                return
        is_chunked = False
        if response.length is not None and not response.chunked:
            headers.append(("Content-Length", str(len(first) + response.length)))
        elif self.request_version == "HTTP/1.1":
            headers.append(("Transfer-Encoding", "chunked"))
            is_chunked = True
        else:
            self.close_connection = True  # HTTP/1.0 client: the body ends when we close
        self._start(response, headers)
        piece = first or response.read1(PIECE)
        sent = 0
        while piece:
            if limit is not None and sent + len(piece) > limit:
                piece = piece[: limit - sent]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if is_chunked and piece else piece)
                self.wfile.flush()
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if is_chunked else piece)
            sent += len(piece)
            piece = response.read1(PIECE)
        if is_chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _start(self, response: http.client.HTTPResponse, headers: list[tuple[str, str]]) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _send_injected(self, fault: FaultKind, plan: FaultPlan) -> None:
        status = 503 if fault is FaultKind.ERROR_503 else 429
        headers = {"X-Faultproxy-Fault": fault.value}
        if plan.retry_after is RetryAfter.SECONDS:
            headers["Retry-After"] = str(plan.retry_after_seconds)
        elif plan.retry_after is RetryAfter.HTTP_DATE:
            when = time.time() + plan.retry_after_seconds
            headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
        self._send_simple(status, f"faultproxy injected {fault.value}", headers)

    def _send_simple(self, status: int, message: str, headers: Mapping[str, str]) -> None:
        body = json.dumps({"error": {"code": status, "message": message}}).encode()
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the client connection with a TCP RST and no response at all."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


# BaseHTTPRequestHandler dispatches on do_<METHOD>; every method takes the same road.
for _method in _PROXIED_METHODS:
    setattr(_Handler, f"do_{_method}", _Handler._relay)

__all__ = [
    "Exchange",
    "FaultKind",
    "FaultPlan",
    "FaultProxy",
    "RetryAfter",
    "devcloud_upstreams",
]
