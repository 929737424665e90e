"""Exports on Celery: `stackyard worker` processes, the machine's RabbitMQ, a shared PostgreSQL, the devcloud.

A worker killed with SIGKILL mid-transfer loses nothing: the broker hands its unacknowledged message
to another worker, which claims the job once the dead worker's lease runs out and resumes it from
the segments already stored.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import swiftclient.client
import yaml
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.clock import SystemClock
from stackyard.cloud.images import ImageData, ImageGateway
from stackyard.cloud.retry import RetryPolicy
from stackyard.cloud.session import open_session
from stackyard.config import load_settings
from stackyard.db.engine import make_engine, session_factory
from stackyard.db.migrate import upgrade
from stackyard.devcloud.access import Credentials
from stackyard.exports.models import SEGMENTS_FOLDER, Checkpoint, parse_swift_url
from stackyard.exports.service import ExportRequest, ExportService
from stackyard.jobs.celery import CeleryDispatcher, make_celery
from stackyard.jobs.models import Job, JobState
from stackyard.jobs.repository import JobRepository
from stackyard.providers.openstack import CloudRuntime
from stackyard.providers.registry import build_providers, export_cloud
from support.clouds import scratch_container, sdk_connection, swift_connection
from support.postgres import temporary_database

RUN = uuid.uuid4().hex[:6]
MIB = 1024 * 1024
BROKER = os.environ.get("STACKYARD_TEST_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS = os.environ.get("STACKYARD_TEST_CELERY_REDIS_URL", "redis://127.0.0.1:6379/15")
LEASE_SECONDS = 8
WORKER_START = 90.0


@dataclass
class Fleet:
    config: Path
    logs: Path
    sessions: sessionmaker[Session]
    service: ExportService
    procs: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """A worker with a fresh log (`<name>.log`), once Celery says it is ready."""
        log = (self.logs / f"{name}.log").open("wb")
        env = {**os.environ, "STACKYARD_CONFIG": str(self.config)}
        env.pop("STACKYARD_BROKER_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from stackyard.cli import main; main()", "worker", "--concurrency", "3"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        deadline = time.monotonic() + WORKER_START
        while b" ready." not in (self.logs / f"{name}.log").read_bytes():
            assert proc.poll() is None, f"worker {name} exited: {self.log(name)}"
            assert time.monotonic() < deadline, f"worker {name} not ready: {self.log(name)}"
            time.sleep(0.5)
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def job(self, job_id: str) -> Job:
        with self.sessions() as session:
            return JobRepository(session).get(job_id)

    def wait(self, job_id: str, done: Callable[[Job], bool], timeout: float) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if done(job):
                return job
            assert time.monotonic() < deadline, f"job {job_id} stuck: {job}\n{self.log_tail()}"
            time.sleep(0.3)

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.logs.glob("*.log")
        )


@pytest.fixture(scope="module")
def fleet(admin_credentials: Credentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from make_fleet(BROKER, admin_credentials, tmp_path_factory)


@pytest.fixture(scope="module")
def redis_fleet(admin_credentials: Credentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from make_fleet(REDIS, admin_credentials, tmp_path_factory)


def make_fleet(
    broker: str, admin_credentials: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("workers")
    with temporary_database("stackyard_workers") as url:
        engine = make_engine(url)
        upgrade(engine)
        config = root / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "providers": {
                        "clouds": [],
                        "openstack": {
                            "auth_url": admin_credentials.auth_url,
                            "username": admin_credentials.username,
                            "password": admin_credentials.password,
                            "project_name": admin_credentials.project_name,
                            "user_domain_name": admin_credentials.user_domain_name,
                            "project_domain_name": admin_credentials.project_domain_name,
                            "region_name": admin_credentials.region_name,
                        },
                    },
                    "database": {"url": url},
                    "data_dir": str(root / "data"),
                    "jobs": {"broker_url": broker, "threads": 3, "lease_seconds": LEASE_SECONDS},
                    "exports": {"segment_size": 2 * MIB, "per_cloud": 8, "per_target": 8},
                }
            )
        )
        settings = load_settings(config, environ={})
        runtime = CloudRuntime(policy=RetryPolicy(), clock=SystemClock())
        providers = build_providers(settings, runtime)
        dispatcher = CeleryDispatcher(make_celery(broker))
        sessions = session_factory(engine)
        service = ExportService(sessions, export_cloud(providers), settings.exports, dispatch=dispatcher)
        fleet = Fleet(config, root, sessions, service, {})
        yield fleet
        for name in list(fleet.procs):
            fleet.kill(name)
        engine.dispose()


@pytest.fixture(scope="module")
def swift(admin_credentials: Credentials) -> swiftclient.client.Connection:
    return swift_connection(admin_credentials)


@pytest.fixture(scope="module")
def container(swift: swiftclient.client.Connection) -> Iterator[str]:
    with scratch_container(swift, f"workers-{RUN}") as name:
        yield name


@pytest.fixture(scope="module")
def image(admin_credentials: Credentials) -> Iterator[tuple[str, str]]:
    """A 24 MiB raw image and its sha256."""
    data = b"stackyard worker test\n".ljust(512, b"\0") + hashlib.shake_256(RUN.encode()).digest(
        24 * MIB - 512
    )
    images = ImageGateway(open_session(sdk_connection(admin_credentials), name="devcloud"))
    created = images.create_image(ImageData(f"workers-{RUN}", "raw"))
    try:
        images.upload(created.id, [data[i : i + MIB] for i in range(0, len(data), MIB)], size=len(data))
        yield created.id, hashlib.sha256(data).hexdigest()
    finally:
        images.delete_image(created.id)


def stored_sha256(swift: swiftclient.client.Connection, location: str) -> str:
    where = parse_swift_url(location)
    digest = hashlib.sha256()
    for piece in swift.get_object(where.container, where.name, resp_chunk_size=MIB)[1]:
        digest.update(piece)
    return digest.hexdigest()


def test_a_worker_killed_mid_transfer_is_resumed_by_another(
    fleet: Fleet, swift: swiftclient.client.Connection, container: str, image: tuple[str, str]
) -> None:
    image_id, sha256 = image
    fleet.start("a")
    options = fleet.service.default_options(image_id=image_id, bandwidth=3 * MIB)  # ~8 s for 24 MiB
    job = fleet.service.submit(
        ExportRequest("openstack", None, f"swift://{container}/kill/", options), "tests"
    )
    running = fleet.wait(job.id, lambda j: len(Checkpoint.from_payload(j.checkpoint).contiguous()) >= 3, 120)
    kept = Checkpoint.from_payload(running.checkpoint).contiguous()
    killed_at = time.time()
    fleet.kill("a")
    fleet.start("b")
    done = fleet.wait(job.id, lambda j: j.state.is_final, 180)

    assert done.state is JobState.SUCCEEDED, f"{done.error}\n{fleet.log_tail()}"
    assert done.attempts >= 2
    export = fleet.service.get(job.id)
    assert export.location is not None
    assert stored_sha256(swift, export.location) == sha256
    name = parse_swift_url(export.location).name
    listing = swift.get_container(container, prefix=f"{SEGMENTS_FOLDER}/{name}/", full_listing=True)[1]
    assert len(listing) == 12  # 24 MiB in 2 MiB segments: no orphans from the killed attempt
    by_name = {item["name"].rsplit("/", 1)[1]: item for item in listing}
    for segment in kept:  # stored before the kill, kept as they were (same etag, not uploaded again)
        item = by_name[f"{segment.index:08d}"]
        assert item["hash"] == segment.etag
        modified = time.mktime(time.strptime(item["last_modified"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert modified <= killed_at + 1


def test_two_workers_run_six_exports_at_once(
    fleet: Fleet, swift: swiftclient.client.Connection, container: str, image: tuple[str, str]
) -> None:
    image_id, sha256 = image
    for name in ("a", "b"):
        if name not in fleet.procs:
            fleet.start(name)
    options = fleet.service.default_options(image_id=image_id)
    jobs = [
        fleet.service.submit(
            ExportRequest("openstack", None, f"swift://{container}/six-{n}/", options), "tests"
        )
        for n in range(6)
    ]
    ended = [fleet.wait(j.id, lambda j: j.state.is_final, 300) for j in jobs]

    assert [j.state for j in ended] == [JobState.SUCCEEDED] * 6, [j.error for j in ended]
    for job in jobs:
        export = fleet.service.get(job.id)
        assert export.location is not None
        assert stored_sha256(swift, export.location) == sha256
    ran = {name: fleet.log(name).count("succeeded in") for name in ("a", "b")}
    assert all(count > 0 for count in ran.values()), ran  # both workers took a share


def test_a_worker_on_redis_runs_an_export(
    redis_fleet: Fleet, swift: swiftclient.client.Connection, container: str, image: tuple[str, str]
) -> None:
    image_id, sha256 = image
    redis_fleet.start("redis")
    options = redis_fleet.service.default_options(image_id=image_id)
    job = redis_fleet.service.submit(
        ExportRequest("openstack", None, f"swift://{container}/redis/", options), "tests"
    )
    done = redis_fleet.wait(job.id, lambda j: j.state.is_final, 180)
    assert done.state is JobState.SUCCEEDED, f"{done.error}\n{redis_fleet.log_tail()}"
    export = redis_fleet.service.get(job.id)
    assert export.location is not None and stored_sha256(swift, export.location) == sha256
    assert "succeeded in" in redis_fleet.log("redis")
