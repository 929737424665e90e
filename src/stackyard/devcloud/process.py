"""Start, health-check and stop devcloud processes, tracked by PID files."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stackyard.devcloud.context import Layout
from stackyard.devcloud.spec import AliveCheck, HealthCheck, HttpCheck, LogCheck, ServiceSpec, TcpCheck
from stackyard.errors import PortInUseError, ServiceStartError


@dataclass(frozen=True)
class ProcessInfo:
    """What `status` reports for one process."""

    name: str
    pid: int | None
    port: int | None
    is_running: bool
    is_healthy: bool
    rss_bytes: int | None


def read_pid(layout: Layout, name: str) -> int | None:
    try:
        text = layout.pid_file(name).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def is_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # NOTE: the state letter follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def started_at(pid: int) -> float | None:
    """When the process started, in seconds since the epoch (to within a second); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None
    # Field 22 (starttime, in clock ticks since boot) is the 20th after the command name.
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process and all its descendants (uWSGI forks workers)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total or None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def is_port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def _log_offset_file(layout: Layout, name: str) -> Path:
    return layout.run / f"{name}.logpos"


def has_logged(layout: Layout, name: str, pattern: str) -> bool:
    """Whether the log written since the last spawn of `name` contains `pattern`."""
    try:
        offset = int(_log_offset_file(layout, name).read_text())
    except (FileNotFoundError, ValueError):
        offset = 0
    try:
        with layout.log_file(name).open("rb") as handle:
            handle.seek(offset)
            return pattern.encode() in handle.read()
    except FileNotFoundError:
        return False


def probe(
    check: HealthCheck,
    host: str,
    started_at: float | None = None,
    *,
    layout: Layout | None = None,
    name: str = "",
) -> bool:
    """One health probe; never raises for an unhealthy service."""
    if isinstance(check, LogCheck):
        return layout is not None and has_logged(layout, name, check.pattern)
    if isinstance(check, TcpCheck):
        return is_port_open(host, check.port)
    if isinstance(check, HttpCheck):
        try:
            with urllib.request.urlopen(check.url, timeout=3) as response:  # noqa: S310 (loopback)
                return int(response.status) < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except (urllib.error.URLError, OSError):
            return False
    if isinstance(check, AliveCheck):
        return started_at is None or time.monotonic() - started_at >= check.settle
    raise TypeError(f"unknown health check {check!r}")


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn(layout: Layout, spec: ServiceSpec, host: str) -> int:
    """Start `spec` in its own session, stdout+stderr appended to its log; returns the PID."""
    if spec.port is not None and is_port_open(host, spec.port):
        raise PortInUseError(spec.name, spec.port)
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.run.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    # The OpenStack services must never see the app's virtualenv.
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{layout.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    log_path = layout.log_file(spec.name)
    _log_offset_file(layout, spec.name).write_text(str(log_path.stat().st_size if log_path.exists() else 0))
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=layout.root,
            start_new_session=True,
        )
    layout.pid_file(spec.name).write_text(str(process.pid))
    return process.pid


def wait_healthy(
    layout: Layout,
    spec: ServiceSpec,
    host: str,
    pid: int,
    started_at: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until `spec` is healthy; raise ServiceStartError with its log tail if it dies or times out."""
    deadline = started_at + spec.start_timeout
    while True:
        if not is_alive(pid):
            _reap(pid)
            raise ServiceStartError(spec.name, "process exited", log_tail(layout.log_file(spec.name)))
        if probe(spec.health, host, started_at, layout=layout, name=spec.name):
            return
        if time.monotonic() > deadline:
            raise ServiceStartError(
                spec.name,
                f"not healthy after {spec.start_timeout:.0f} s",
                log_tail(layout.log_file(spec.name)),
            )
        sleep(0.25)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop(layout: Layout, name: str, timeout: float) -> bool:
    """SIGTERM the process group, SIGKILL after `timeout`; True if something was stopped."""
    pid = read_pid(layout, name)
    layout.pid_file(name).unlink(missing_ok=True)
    if pid is None or not is_alive(pid):
        return False
    group = [pid, *descendants(pid)]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    for member in group:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not any(is_alive(member) for member in group):
            return True
        time.sleep(0.1)
    for member in group:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: wait (briefly) until the kernel has ended them.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _reap(pid)
        if not any(is_alive(member) for member in group):
            break
        time.sleep(0.05)
    return True


def info(layout: Layout, spec: ServiceSpec, host: str) -> ProcessInfo:
    pid = read_pid(layout, spec.name)
    running = pid is not None and is_alive(pid)
    healthy = running and probe(spec.health, host, layout=layout, name=spec.name)
    return ProcessInfo(
        name=spec.name,
        pid=pid if running else None,
        port=spec.port,
        is_running=running,
        is_healthy=healthy,
        rss_bytes=rss_bytes(pid) if running and pid is not None else None,
    )
