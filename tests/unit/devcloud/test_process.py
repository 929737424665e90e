"""Process supervision with real child processes: spawn, health, failure with log tail, stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from stackyard.devcloud.context import Layout
from stackyard.devcloud.process import is_alive, read_pid, spawn, started_at, stop, wait_healthy
from stackyard.devcloud.spec import AliveCheck, ServiceSpec, TcpCheck
from stackyard.errors import PortInUseError, ServiceStartError


def layout(tmp_path: Path) -> Layout:
    root = tmp_path / "dc"
    (root / "venv" / "bin").mkdir(parents=True)
    return Layout(root)


def test_spawn_then_stop_by_pid(tmp_path: Path) -> None:
    lay = layout(tmp_path)
    spec = ServiceSpec("sleeper", (sys.executable, "-c", "import time; time.sleep(60)"), AliveCheck(0.2))
    pid = spawn(lay, spec, "127.0.0.1")
    wait_healthy(lay, spec, "127.0.0.1", pid, time.monotonic())
    assert read_pid(lay, "sleeper") == pid
    began = started_at(pid)
    assert began is not None and abs(began - time.time()) < 5  # what `up` compares config mtimes with
    assert stop(lay, "sleeper", timeout=5)
    assert not is_alive(pid)
    assert started_at(pid) is None
    assert read_pid(lay, "sleeper") is None


def test_process_ignoring_sigterm_is_killed_after_timeout(tmp_path: Path) -> None:
    lay = layout(tmp_path)
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    spec = ServiceSpec("stubborn", (sys.executable, "-c", code), AliveCheck(0.3))
    pid = spawn(lay, spec, "127.0.0.1")
    wait_healthy(lay, spec, "127.0.0.1", pid, time.monotonic())
    began = time.monotonic()
    assert stop(lay, "stubborn", timeout=0.5)
    assert not is_alive(pid)
    assert time.monotonic() - began < 5


def test_dying_service_fails_with_its_log_tail(tmp_path: Path) -> None:
    lay = layout(tmp_path)
    code = "import sys; print('config error: no [database] section', flush=True); sys.exit(3)"
    spec = ServiceSpec("broken", (sys.executable, "-c", code), TcpCheck(1), start_timeout=10)
    pid = spawn(lay, spec, "127.0.0.1")
    with pytest.raises(ServiceStartError) as caught:
        wait_healthy(lay, spec, "127.0.0.1", pid, time.monotonic())
    assert caught.value.service == "broken"
    assert "no [database] section" in caught.value.log_tail
    assert "broken failed to start: process exited" in str(caught.value)


def test_port_in_use_is_reported_before_starting(tmp_path: Path) -> None:
    import socket

    lay = layout(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        spec = ServiceSpec("web", ("true",), TcpCheck(port), port=port)
        with pytest.raises(PortInUseError) as caught:
            spawn(lay, spec, "127.0.0.1")
    assert str(port) in str(caught.value)
    assert read_pid(lay, "web") is None


def test_log_check_only_counts_lines_written_since_this_start(tmp_path: Path) -> None:
    from stackyard.devcloud.spec import LogCheck

    lay = layout(tmp_path)
    lay.logs.mkdir(parents=True)
    lay.log_file("worker").write_text("old run: consuming\n")
    code = "import time; time.sleep(0.5); print('consuming', flush=True); time.sleep(60)"
    spec = ServiceSpec("worker", (sys.executable, "-c", code), LogCheck("consuming"), start_timeout=10)
    pid = spawn(lay, spec, "127.0.0.1")
    began = time.monotonic()
    wait_healthy(lay, spec, "127.0.0.1", pid, began)
    assert time.monotonic() - began >= 0.4, "the previous run's line must not count"
    assert stop(lay, "worker", timeout=5)


def test_a_second_command_waits_for_the_lock(tmp_path: Path) -> None:
    import fcntl
    import threading

    from stackyard.devcloud.launcher import Devcloud

    cloud = Devcloud(Layout(tmp_path / "dc"))
    cloud.layout.root.mkdir(parents=True)
    messages: list[str] = []
    cloud.report = messages.append
    holder = (cloud.layout.root / ".lock").open("w")
    fcntl.flock(holder, fcntl.LOCK_EX)
    threading.Timer(0.6, holder.close).start()
    began = time.monotonic()
    with cloud._locked():
        waited = time.monotonic() - began
    assert waited >= 0.5
    assert messages == ["waiting for another devcloud command on this directory to finish"]
