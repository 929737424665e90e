"""Where the devcloud keeps its files, which ports it uses, and what every service config needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

LOOPBACK = "127.0.0.1"
REGION = "RegionOne"


@dataclass(frozen=True)
class Layout:
    """The devcloud's directory tree; every path it writes is below `root`."""

    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def etc_dir(self, service: str) -> Path:
        return self.etc / service

    def data_dir(self, service: str) -> Path:
        return self.data / service

    def log_file(self, process: str) -> Path:
        return self.logs / f"{process}.log"

    def pid_file(self, process: str) -> Path:
        return self.run / f"{process}.pid"

    def site_packages(self) -> Path:
        return self.venv / "lib" / "python3.11" / "site-packages"


@dataclass(frozen=True)
class Ports:
    """TCP ports on 127.0.0.1; the API ports are OpenStack's usual ones."""

    keystone: int = 5000
    placement: int = 8778
    nova: int = 8774
    neutron: int = 9696
    glance: int = 9292
    cinder: int = 8776
    swift_proxy: int = 8080
    swift_object: int = 6200
    swift_container: int = 6201
    swift_account: int = 6202
    mariadb: int = 13306
    rabbitmq: int = 15673
    rabbitmq_dist: int = 25673
    memcached: int = 11311


class Broker(StrEnum):
    """How RPC is carried: a real RabbitMQ, or oslo.messaging's in-process fake when no broker runs."""

    RABBIT = "rabbit"
    FAKE = "fake"


@dataclass(frozen=True)
class Secrets:
    """Passwords generated at first bootstrap and kept (mode 0600) in the devcloud's state."""

    admin_password: str
    demo_password: str
    service_password: str
    db_password: str
    rabbit_password: str
    swift_hash_suffix: str


@dataclass(frozen=True)
class CloudContext:
    """Everything a service's configuration needs to know about the rest of the devcloud."""

    layout: Layout
    secrets: Secrets
    db_base_url: str
    transport_url: str
    ports: Ports = field(default_factory=Ports)
    host: str = LOOPBACK
    region: str = REGION
    db_prefix: str = ""

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    @property
    def keystone_url(self) -> str:
        return self.url(self.ports.keystone, "/v3")

    @property
    def memcached_servers(self) -> str:
        return f"{self.host}:{self.ports.memcached}"

    @property
    def has_broker(self) -> bool:
        """True when RPC (and notifications) go through a real RabbitMQ, not the in-process fake."""
        return not self.transport_url.startswith(f"{Broker.FAKE.value}://")

    def db_url(self, database: str) -> str:
        return f"{self.db_base_url}/{self.db_prefix}{database}?charset=utf8"
