"""What a devcloud process is: its command, its port and how to tell that it is healthy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stackyard.devcloud.context import CloudContext


@dataclass(frozen=True)
class HttpCheck:
    """Healthy once a GET of `url` answers with a status below 500 (any auth answer will do)."""

    url: str


@dataclass(frozen=True)
class TcpCheck:
    """Healthy once something accepts TCP connections on the port."""

    port: int


@dataclass(frozen=True)
class AliveCheck:
    """Healthy once the process has stayed alive for `settle` seconds (workers with no port)."""

    settle: float = 3.0


@dataclass(frozen=True)
class LogCheck:
    """Healthy once the process has logged `pattern` since it was started (RPC workers: the line
    they write after their RPC server is consuming, so `up` never returns before a cast would land)."""

    pattern: str


HealthCheck = HttpCheck | TcpCheck | AliveCheck | LogCheck


@dataclass(frozen=True)
class ServiceSpec:
    """One process the devcloud starts and supervises by PID."""

    name: str
    argv: tuple[str, ...]
    health: HealthCheck
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    stop_timeout: float = 10.0
    start_timeout: float = 120.0


def uwsgi_argv(ctx: CloudContext, name: str, module: str, port: int, *extra: str) -> tuple[str, ...]:
    """uWSGI serving an OpenStack WSGI module on loopback, one worker process with threads."""
    return (
        str(ctx.layout.bin("uwsgi")),
        "--procname-prefix",
        f"stackyard-{name}-",
        "--http11-socket",
        f"{ctx.host}:{port}",
        "--module",
        module,
        "--master",
        "--processes",
        "1",
        "--threads",
        "4",
        "--enable-threads",
        "--lazy-apps",
        "--http-chunked-input",
        "--http-raw-body",
        "--buffer-size",
        "65535",
        "--die-on-term",
        "--need-app",
        "--thunder-lock",
        "--hook-master-start",
        "unix_signal:15 gracefully_kill_them_all",
        "--disable-logging",
        *extra,
    )
