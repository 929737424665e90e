"""Install the devcloud's OpenStack virtualenv (pinned) and the Debian packages it needs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from stackyard.devcloud.context import Layout
from stackyard.errors import DevcloudError

HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / "constraints-2026.2.txt"
PLUGIN_DIR = HERE / "osplugin"

OPENSTACK_PACKAGES = (
    "keystone==30.0.0",
    "openstack-placement==16.0.0",
    "nova==34.0.0",
    "neutron==29.0.0",
    "glance==33.0.0",
    "cinder==29.0.0",
    "swift==2.38.3",
    "uwsgi",
    # NOTE: neutron 29.0.0 does not declare pyroute2, yet its DB migrations import it.
    "pyroute2",
    "PyMySQL",
    "python-memcached",
)

# Debian packages by the executable that proves them installed.
DEBIAN_PACKAGES = {
    "mariadbd": "mariadb-server",
    "mariadb": "mariadb-client",
    "mariadb-dump": "mariadb-client",
    "rabbitmq-server": "rabbitmq-server",
    "memcached": "memcached",
    "qemu-img": "qemu-utils",  # exports that convert disk formats
}

Report = Callable[[str], None]


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(CONSTRAINTS.read_bytes())
    digest.update("\n".join(OPENSTACK_PACKAGES).encode())
    for path in sorted(PLUGIN_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".toml"):
            digest.update(str(path.relative_to(PLUGIN_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _marker(layout: Layout) -> Path:
    return layout.venv / ".stackyard-installed"


def is_venv_current(layout: Layout) -> bool:
    marker = _marker(layout)
    return marker.is_file() and marker.read_text().strip() == _fingerprint()


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    # uv is a dependency of the project's tooling; fall back to the module form.
    return [sys.executable, "-m", "uv"]


def _run(argv: list[str], what: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        raise DevcloudError(f"{what} failed (exit {result.returncode}):\n{tail}")


def ensure_venv(layout: Layout, report: Report) -> None:
    """Create or update the OpenStack virtualenv when its pins or our plugin changed."""
    if is_venv_current(layout):
        return
    report(f"installing OpenStack 2026.2 into {layout.venv} (about 1-2 minutes)")
    if not layout.python.exists():
        _run([*_uv(), "venv", "--quiet", "--python", "3.11", str(layout.venv)], "creating the virtualenv")
    _run(
        [
            *_uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(layout.python),
            "--constraint",
            str(CONSTRAINTS),
            *OPENSTACK_PACKAGES,
            str(PLUGIN_DIR),
        ],
        "installing the OpenStack packages",
    )
    # The plugin is reinstalled whenever its files change, without a version bump.
    _run(
        [
            *_uv(),
            "pip",
            "install",
            "--quiet",
            "--reinstall-package",
            "stackyard-devcloud-osplugin",
            "--python",
            str(layout.python),
            "--constraint",
            str(CONSTRAINTS),
            str(PLUGIN_DIR),
        ],
        "installing the devcloud plugin",
    )
    _marker(layout).write_text(_fingerprint())


def missing_debian_packages(executables: Iterable[str]) -> list[str]:
    missing = []
    for executable in executables:
        if shutil.which(executable) is None and not Path("/usr/sbin", executable).exists():
            missing.append(DEBIAN_PACKAGES[executable])
    return missing


def ensure_debian_packages(executables: Iterable[str], report: Report) -> None:
    """apt-get install what is missing (the devcloud is meant for disposable root machines)."""
    packages = sorted(set(missing_debian_packages(executables)))
    if not packages:
        return
    if os.geteuid() != 0:
        raise DevcloudError(
            f"missing Debian packages {', '.join(packages)}; install them (apt-get install) or pass "
            "--db-url/--broker-url to use servers you already run"
        )
    report(f"installing Debian packages: {', '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise DevcloudError(f"{' '.join(argv[:2])} failed:\n{result.stderr[-2000:]}")
