"""The example provider plugin, installed next to stackyard in a fresh venv, passes its tests and is found.

Its provider is then served by that venv's `stackyard serve`, listed in `/api/v1/providers` next to a
clouds.yaml cloud, and its instances are created, read and deleted through the API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from uv import find_uv_bin

from stackyard.devcloud.access import Credentials, cloud_entry

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "stackyard-provider-static"
INSTALL_TIMEOUT = 600.0  # seconds; from a warm uv cache it takes a few


def run(
    args: Sequence[str | Path], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output when it exits non-zero."""
    command = [str(a) for a in args]
    result = subprocess.run(
        command,
        cwd=cwd,
        env=dict(env) if env is not None else plugin_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    return result


def plugin_env() -> dict[str, str]:
    """This process's environment less what points at this checkout's venv (the test runs inside it)."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin dir of a fresh Python 3.11 venv with stackyard, the static provider plugin and pytest.

    Both packages are built from this checkout and installed as wheels (not editable), as an operator
    would install them; uv's cache keeps it fast. Processes started from it should use `plugin_env()`.
    """
    work = tmp_path_factory.mktemp("plugin-venv")
    venv = work / "venv"
    uv = find_uv_bin()
    # The versions of uv.lock, so this venv runs what the rest of the suite runs.
    constraints = work / "constraints.txt"
    run(
        [uv, "export", "--frozen", "--no-emit-project", "--no-hashes", "--output-file", constraints],
        cwd=REPO,
    )
    run([uv, "venv", "--python", "3.11", venv])
    python = venv / "bin" / "python"
    # --no-sources: the example's [tool.uv.sources] would install stackyard editable from this checkout.
    packages: list[str | Path] = [REPO, EXAMPLE, "pytest"]
    run([uv, "pip", "install", "--no-sources", "--python", python, "--constraints", constraints, *packages])
    return venv / "bin"


def test_the_example_test_suite_passes_in_the_venv(plugin_venv: Path) -> None:
    result = run(
        [plugin_venv / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=EXAMPLE
    )
    assert " passed" in result.stdout, result.stdout
    assert "skipped" not in result.stdout, result.stdout


CHECK = """
import json, sys
from importlib.metadata import entry_points

import stackyard
from stackyard.providers.base import ENTRY_POINT_GROUP, Provider

found = {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
kind = found["static"].load() if "static" in found else None
provider = kind("x", {"state_file": sys.argv[1]}) if kind is not None else None
print(json.dumps({
    "entry_points": sorted(found),
    "class": f"{kind.__module__}.{kind.__qualname__}" if kind is not None else None,
    "is_provider": isinstance(provider, Provider),
    "type": getattr(provider, "type", None),
    "stackyard_file": stackyard.__file__,
    "plugin_file": sys.modules[kind.__module__].__file__ if kind is not None else None,
}))
"""


def test_the_plugin_is_found_through_the_entry_point_group(plugin_venv: Path, tmp_path: Path) -> None:
    result = run([plugin_venv / "python", "-c", CHECK, tmp_path / "state.json"], cwd=tmp_path)
    seen = json.loads(result.stdout)
    assert "static" in seen["entry_points"], seen
    assert seen["class"] == "stackyard_provider_static.provider.StaticProvider", seen
    assert seen["is_provider"] is True, seen
    assert seen["type"] == "static", seen
    # Both come from the venv's site-packages, not from this checkout's source trees.
    venv = plugin_venv.parent
    assert Path(seen["stackyard_file"]).is_relative_to(venv), seen
    assert Path(seen["plugin_file"]).is_relative_to(venv), seen


SERVE_START_TIMEOUT = 60.0  # seconds for `stackyard serve` to answer /healthz
SERVE_STOP_TIMEOUT = 15.0  # seconds from SIGTERM to SIGKILL
LOG_TAIL = 4000  # characters of the server's log shown when something fails


@dataclass(frozen=True)
class Served:
    """A running `stackyard serve` of the plugin venv: its base URL, an admin API key and its log."""

    base_url: str
    api_key: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=60.0
        )

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return f"--- stackyard serve log (tail) ---\n{text[-LOG_TAIL:]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(work: Path, creds: Credentials) -> dict[str, str]:
    """plugin_env() with settings naming the devcloud (clouds.yaml) and a `static` plugin provider `lab`.

    The data dir holds the embedded SQLite database; inherited STACKYARD_* and OS_* variables are
    dropped so nothing from the calling shell picks another database or cloud.
    """
    clouds = {"clouds": {"devcloud": cloud_entry(creds)}}
    settings = {
        "providers": {
            "clouds": ["devcloud"],
            "plugins": [{"name": "lab", "type": "static", "options": {"state_file": str(work / "lab.json")}}],
        },
        "api": {"keystone_cloud": "devcloud"},
    }
    (work / "clouds.yaml").write_text(yaml.safe_dump(clouds))
    (work / "settings.yaml").write_text(yaml.safe_dump(settings))
    data = work / "data"
    data.mkdir()
    env = {k: v for k, v in plugin_env().items() if not k.startswith(("STACKYARD_", "OS_"))}
    env["STACKYARD_CONFIG"] = str(work / "settings.yaml")
    env["OS_CLIENT_CONFIG_FILE"] = str(work / "clouds.yaml")
    env["STACKYARD_DATA_DIR"] = str(data)
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=SERVE_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SERVE_STOP_TIMEOUT)


def wait_healthy(process: subprocess.Popen[bytes], served: Served) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    last = "no attempt"
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            pytest.fail(f"stackyard serve exited {code} before /healthz answered\n{served.tail()}")
        try:
            response = httpx.get(f"{served.base_url}/healthz", timeout=2.0)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        time.sleep(0.2)
    pytest.fail(
        f"/healthz did not answer 200 within {SERVE_START_TIMEOUT:g} s (last: {last})\n{served.tail()}"
    )


@pytest.fixture
def served_plugin(plugin_venv: Path, admin_credentials: Credentials, tmp_path: Path) -> Iterator[Served]:
    """The venv's `stackyard serve` with the devcloud and the plugin provider `lab`; stopped afterwards."""
    env = serve_env(tmp_path, admin_credentials)
    stackyard = plugin_venv / "stackyard"
    created = run([stackyard, "apikeys", "create", "plugin-test", "--role", "admin", "-f", "json"], env=env)
    api_key = json.loads(created.stdout)["key"]
    port = free_port()
    served = Served(base_url=f"http://127.0.0.1:{port}", api_key=api_key, log=tmp_path / "serve.log")
    command = [str(stackyard), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with served.log.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(process, served)
        yield served
    finally:
        stop(process)


def test_the_served_plugin_provider_is_listed_and_runs_instances(served_plugin: Served) -> None:
    tail = served_plugin.tail
    with served_plugin.client() as api:
        listed = api.get("/api/v1/providers")
        assert listed.status_code == 200, f"{listed.status_code} {listed.text}\n{tail()}"
        providers = {item["name"]: item for item in listed.json()["items"]}
        assert set(providers) == {"lab", "devcloud"}, providers
        lab = providers["lab"]
        assert lab["type"] == "static", lab
        assert lab["reachable"] is True and lab["auth_ok"] is True, lab
        assert providers["devcloud"]["type"] == "openstack", providers["devcloud"]

        flavors = api.get("/api/v1/providers/lab/flavors")
        assert flavors.status_code == 200, f"{flavors.status_code} {flavors.text}\n{tail()}"
        images = api.get("/api/v1/providers/lab/images")
        assert images.status_code == 200, f"{images.status_code} {images.text}\n{tail()}"
        assert flavors.json()["items"] and images.json()["items"], (flavors.text, images.text)
        flavor = flavors.json()["items"][0]["name"]
        image = images.json()["items"][0]["id"]

        body = {"name": "p1", "type": flavor, "image_id": image}
        created = api.post("/api/v1/providers/lab/instances", json=body)
        assert created.status_code == 202, f"{created.status_code} {created.text}\n{tail()}"
        location = created.headers.get("location")
        assert location, dict(created.headers)
        instance = created.json()
        assert location.endswith(f"/api/v1/providers/lab/instances/{instance['id']}"), (location, instance)
        assert instance["name"] == "p1" and instance["flavor"]["name"] == flavor, instance
        assert instance["image_id"] == image, instance

        fetched = api.get(location)
        assert fetched.status_code == 200, f"{fetched.status_code} {fetched.text}\n{tail()}"
        assert fetched.json()["id"] == instance["id"] and fetched.json()["name"] == "p1", fetched.json()

        deleted = api.delete(location)
        assert deleted.status_code == 202, f"{deleted.status_code} {deleted.text}\n{tail()}"

        gone = api.get(location)
        assert gone.status_code == 404, f"{gone.status_code} {gone.text}\n{tail()}"
        error = gone.json()["error"]
        assert error["code"] == "not_found", error
        assert isinstance(error["message"], str) and error["message"], error
