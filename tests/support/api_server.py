"""Run `stackyard serve` as a subprocess on a free loopback port, for API tests over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx
import pytest
import yaml

HOST = "127.0.0.1"
START_TIMEOUT = 60.0  # seconds until /healthz must answer
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_LINES = 60


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick; a race with others is unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stackyard_command() -> list[str]:
    """How to run the CLI of the venv running the tests (the package has no __main__ module)."""
    script = Path(sys.executable).parent / "stackyard"
    assert script.exists(), f"the stackyard console script is not installed next to {sys.executable}"
    return [str(script)]


def server_environment(
    *,
    data_dir: Path,
    config_file: Path,
    clouds_file: Path,
    database_url: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a test server runs in: this one minus every STACKYARD_* and OS_* setting, plus
    the given data dir, settings file, clouds.yaml and database. STACKYARD_DEVCLOUD_DIR passes through."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKYARD_", "OS_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if os.environ.get("STACKYARD_DEVCLOUD_DIR"):
        env["STACKYARD_DEVCLOUD_DIR"] = os.environ["STACKYARD_DEVCLOUD_DIR"]
    env["STACKYARD_DATA_DIR"] = str(data_dir)
    env["STACKYARD_CONFIG"] = str(config_file)
    env["OS_CLIENT_CONFIG_FILE"] = str(clouds_file)
    if database_url is not None:
        env["STACKYARD_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def write_clouds_yaml(path: Path, clouds: Mapping[str, Mapping[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"clouds": {name: dict(entry) for name, entry in clouds.items()}}))
    path.chmod(0o600)
    return path


def run_stackyard(
    env: Mapping[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a CLI command in the server's environment; a non-zero exit fails the caller with its output."""
    result = subprocess.run(
        [*stackyard_command(), *args], capture_output=True, text=True, env=dict(env), timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(
            f"`stackyard {' '.join(args)}` exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}",
            pytrace=False,
        )
    return result


def create_api_key(env: Mapping[str, str], name: str, role: str = "admin") -> str:
    """An API key made on the server's database the way an operator does (`stackyard apikeys create`)."""
    created = run_stackyard(env, "apikeys", "create", name, "--role", role, "-f", "json")
    key = json.loads(created.stdout)["key"]
    assert isinstance(key, str) and key.startswith("sy_")
    return key


class ApiServer:
    """`stackyard serve` on 127.0.0.1:<free port>; output goes to `log_path`, whose tail failures show."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, workers: int = 1) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no server log at {self.log_path}: {exc.strerror})"
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, message: str) -> None:
        """Fail the test with `message` and the end of the server's log."""
        pytest.fail(
            f"{message}\n--- server log ({self.log_path}), last lines ---\n{self.log_tail()}", pytrace=False
        )

    def start(self, timeout: float = START_TIMEOUT) -> None:
        command = [
            *stackyard_command(),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            # Every test server names its providers; it must never start a devcloud of its own.
            "--no-start-devcloud",
        ]
        with self.log_path.open("ab") as log:
            # A session of its own, so stop() can signal the supervisor and its workers together.
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        self._wait_until_healthy(timeout)

    def _wait_until_healthy(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self.fail(f"`stackyard serve` exited with {code} before answering /healthz")
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=2)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            time.sleep(0.25)
        self.stop()
        self.fail(f"`stackyard serve` did not answer /healthz within {timeout:g}s ({last_error})")

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it if it is still there after STOP_TIMEOUT.

        On SIGTERM uvicorn's supervisor stops and joins its workers before it exits; after a SIGKILL
        the workers left behind are in the same group, which the SIGKILL reaches too.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)
        except ProcessLookupError:
            process.wait(STOP_TIMEOUT)
