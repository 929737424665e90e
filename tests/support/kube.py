"""A real Kubernetes API server on loopback: etcd + kube-apiserver v1.20.2, built by scripts/devkube-build.

No kubelet, scheduler or controller manager: pods never run, namespaces never finish terminating and
owner references are not garbage-collected, none of which the operator's tests need. What is here is the
real server: structural-schema pruning and defaulting, 422 on invalid fields, the status subresource,
generation/observedGeneration, resourceVersion conflicts, RBAC, finalizers and watches.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from base64 import b64encode
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "devkube-build"
VERSION = "v1.20.2"


class KubeError(RuntimeError):
    """The API server could not be built or started; the message carries the relevant log tail."""


def kube_cache() -> Path:
    """Where scripts/devkube-build keeps its build (the same rule as the script's)."""
    if explicit := os.environ.get("STACKYARD_KUBE_CACHE"):
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "stackyard" / "kube-1.20.2"


def _runs(binary: Path) -> bool:
    if not binary.is_file():
        return False
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == f"Kubernetes {VERSION}"


def ensure_built() -> Path:
    """The kube-apiserver binary, after scripts/devkube-build (instant with a current cache; cold ~6 min)."""
    binary = kube_cache() / "bin" / "kube-apiserver"
    if not _runs(binary):
        print(f"kube: building kube-apiserver {VERSION} with {BUILD.name} (first run only, ~6 minutes)")
    # Always run: the script also rebuilds a cache an older recipe made, and installs etcd when missing.
    with tempfile.TemporaryFile() as log:
        done = subprocess.run([str(BUILD)], stdout=log, stderr=subprocess.STDOUT, timeout=3600)
        log.seek(0)
        output = log.read().decode(errors="replace")
    if done.returncode != 0 or not _runs(binary):
        raise KubeError(f"{BUILD.name} failed (exit {done.returncode}):\n{output[-6000:]}")
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, size: int = 4000) -> str:
    if not path.exists():
        return "(no log)"
    return path.read_text(errors="replace")[-size:]


class KubeApiServer:
    """etcd + kube-apiserver on free loopback ports, admin by a static bearer token; a context manager.

    While entered: `url`, `token`, `ca_file` (the server's self-signed CA), `kubeconfig` (a file
    kubectl, kopf and the `kubernetes` client read) and `client()` for plain HTTP as the admin.
    """

    def __init__(self, *, start_timeout: float = 60.0) -> None:
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(24)
        self.port = 0
        self.url = ""
        self._dir: Path | None = None
        self._processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise KubeError("the API server is not started (use it as a context manager)")
        return self._dir

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        # kube-apiserver writes its serving certificate followed by the CA that signed it.
        return self.directory / "certs" / "apiserver.crt"

    @property
    def etcd_log(self) -> Path:
        return self.directory / "etcd.log"

    @property
    def apiserver_log(self) -> Path:
        return self.directory / "kube-apiserver.log"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, *, timeout: float = 30.0) -> httpx.Client:
        """An httpx client for the server as the admin (group system:masters); the caller closes it."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=self.ssl_context(),
            timeout=timeout,
        )

    def __enter__(self) -> KubeApiServer:
        binary = ensure_built()
        etcd = shutil.which("etcd")
        if etcd is None:
            raise KubeError("etcd is not installed (scripts/devkube-build installs Debian's etcd-server)")
        self._dir = Path(tempfile.mkdtemp(prefix="stackyard-kube-"))
        try:
            self._start(binary, etcd)
            self._wait_ready()
            self._write_kubeconfig()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _spawn(self, argv: list[str], log: Path) -> None:
        with log.open("wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._processes.append((process, log))

    def _start(self, binary: Path, etcd: str) -> None:
        home = self.directory
        client_url = f"http://127.0.0.1:{_free_port()}"
        peer_url = f"http://127.0.0.1:{_free_port()}"
        self._spawn(
            [
                etcd,
                "--name=default",
                f"--data-dir={home / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--logger=zap",
                "--log-level=warn",
            ],
            self.etcd_log,
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sa_key = home / "service-account.key"
        sa_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        tokens = home / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._spawn(
            [
                str(binary),
                f"--etcd-servers={client_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                # NOTE: 1.20 still serves an unauthenticated admin port on 127.0.0.1:8080 by default.
                "--insecure-port=0",
                f"--cert-dir={home / 'certs'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--profiling=false",
            ],
            self.apiserver_log,
        )

    def _failure(self, what: str) -> KubeError:
        tails = "\n".join(f"--- {log.name} (tail) ---\n{_tail(log)}" for _, log in self._processes)
        return KubeError(f"{what}\n{tails}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        # The CA appears only once the server has started; readiness is polled without verification.
        with httpx.Client(verify=False, timeout=3, headers={"Authorization": f"Bearer {self.token}"}) as http:
            while True:
                for process, log in self._processes:
                    if process.poll() is not None:
                        raise self._failure(f"{log.stem} exited with {process.returncode} while starting")
                try:
                    response = http.get(f"{self.url}/readyz")
                except httpx.HTTPError as exc:
                    last = repr(exc)
                else:
                    if response.status_code == 200:
                        break
                    last = f"{response.status_code} {response.text[-1500:]}"
                if time.monotonic() > deadline:
                    raise self._failure(
                        f"kube-apiserver not ready within {self.start_timeout:g}s; /readyz: {last}"
                    )
                time.sleep(0.3)
        with self.client() as verified:  # the served certificate checks out against its CA for 127.0.0.1
            verified.get("/version").raise_for_status()

    def _write_kubeconfig(self) -> None:
        ca = b64encode(self.ca_file.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "devkube", "cluster": {"server": self.url, "certificate-authority-data": ca}}
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "devkube", "context": {"cluster": "devkube", "user": "admin"}}],
            "current-context": "devkube",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))  # JSON is YAML: every reader takes it
        self.kubeconfig.chmod(0o600)

    def _stop(self) -> None:
        # The API server first, so it does not log a storm of etcd connection errors on the way down.
        for process, _ in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for process, _ in reversed(self._processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
DEPLOY = ROOT / "deploy"


def apply_crd(http: httpx.Client, crd: dict[str, Any] | None = None, *, timeout: float = 30.0) -> bool:
    """Create or replace a CRD (by default deploy/crd.yaml's) and wait until it is Established.

    True when this call created it (the caller may delete it), False when it replaced one already there.
    """
    if crd is None:
        crd = yaml.safe_load((DEPLOY / "crd.yaml").read_text())
    assert crd is not None
    name = crd["metadata"]["name"]
    created = http.post(CRDS, json=crd)
    if created.status_code == 409:  # applied before (another module, another test): make it this version
        current = http.get(f"{CRDS}/{name}")
        current.raise_for_status()
        crd = {
            **crd,
            "metadata": {**crd["metadata"], "resourceVersion": current.json()["metadata"]["resourceVersion"]},
        }
        replaced = http.put(f"{CRDS}/{name}", json=crd)
        if replaced.status_code != 200:
            raise KubeError(f"CRD {name} not replaced: {replaced.status_code} {replaced.text}")
    elif created.status_code != 201:
        raise KubeError(f"CRD {name} not created: {created.status_code} {created.text}")
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(f"{CRDS}/{name}").json().get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        if conditions.get("Established", {}).get("status") == "True":
            return created.status_code == 201
        if time.monotonic() > deadline:
            raise KubeError(f"CRD {name} was not Established within {timeout:g}s: {conditions}")
        time.sleep(0.2)
