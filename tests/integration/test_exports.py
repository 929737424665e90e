"""Exports against the devcloud (Nova snapshots, Glance, Swift) and PostgreSQL, checked independently.

What was stored is read back with python-swiftclient (or from disk) and compared with the bytes the
devcloud's fake hypervisor writes for a snapshot, so a test never trusts stackyard's own numbers.
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import openstack
import openstack.connection
import pytest
import swiftclient.client
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.images import ImageData, ImageGateway
from stackyard.cloud.objects import ObjectStoreGateway
from stackyard.cloud.retry import RetryPolicy
from stackyard.cloud.session import CloudSession, open_session
from stackyard.config import ExportSettings
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.devcloud.access import Credentials
from stackyard.devcloud.launcher import Devcloud
from stackyard.errors import Forbidden, NotFound, ValidationError
from stackyard.exports.imports import BootSpec, ImportRequest, ImportService
from stackyard.exports.lifecycle import ExportLifecycle, parse_schedules
from stackyard.exports.models import (
    MANIFEST_SUFFIX,
    SEGMENTS_FOLDER,
    Compression,
    DiskFormat,
    ExportState,
    parse_swift_url,
)
from stackyard.exports.retention import RetentionPolicy
from stackyard.exports.service import EXPORT_PROPERTY, CloudHandles, ExportRequest, ExportService
from stackyard.jobs.models import Job, JobState
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobRunner
from support.clouds import scratch_container, sdk_connection, swift_connection
from support.faultproxy import FaultKind, FaultPlan, FaultProxy, devcloud_upstreams
from support.postgres import migrated_database

RUN = uuid.uuid4().hex[:6]
MIB = 1024 * 1024
SNAPSHOT_BYTES = 4 * MIB  # the devcloud hypervisor's default snapshot size
BOOT_TIMEOUT = 180


def snapshot_content(instance_id: str, size: int = SNAPSHOT_BYTES) -> bytes:
    """The bytes the devcloud's fake hypervisor uploads for a snapshot (its documented algorithm)."""
    out = bytearray(f"stackyard devcloud snapshot {instance_id}\n".encode().ljust(512, b"\0"))
    index = 0
    while len(out) < size:
        out += hashlib.shake_256(f"stackyard-devcloud-snapshot:{instance_id}:{index}".encode()).digest(65536)
        index += 1
    return bytes(out[:size])


def pattern_chunks(seed: str, size: int, chunk: int = MIB) -> Iterator[bytes]:
    """Deterministic incompressible bytes, generated as needed (memory stays flat)."""
    index = 0
    left = size
    while left > 0:
        piece = hashlib.shake_256(f"{seed}:{index}".encode()).digest(min(chunk, left))
        if index == 0:
            piece = b"stackyard export test image\n".ljust(512, b"\0") + piece[512:]
        left -= len(piece)
        index += 1
        yield piece


@pytest.fixture(scope="module")
def sessions() -> Iterator[sessionmaker[Session]]:
    with migrated_database("stackyard_exports") as (_url, made):
        yield made


@pytest.fixture(scope="module")
def cloud_session(admin_credentials: Credentials) -> Iterator[CloudSession]:
    session = open_session(sdk_connection(admin_credentials), name="devcloud")
    yield session
    session.close()


@pytest.fixture(scope="module")
def handles(cloud_session: CloudSession) -> CloudHandles:
    return CloudHandles(
        ComputeGateway(cloud_session), ImageGateway(cloud_session), ObjectStoreGateway(cloud_session)
    )


@pytest.fixture(scope="module")
def swift(admin_credentials: Credentials) -> swiftclient.client.Connection:
    return swift_connection(admin_credentials)


@pytest.fixture(scope="module")
def container(swift: swiftclient.client.Connection) -> Iterator[str]:
    with scratch_container(swift, f"exports-{RUN}") as name:
        yield name


@pytest.fixture(scope="module")
def server(admin_conn: openstack.connection.Connection) -> Iterator[str]:
    image = admin_conn.image.find_image("devcloud-raw", ignore_missing=False)
    flavor = admin_conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    network = admin_conn.network.find_network("private", ignore_missing=False)
    created = admin_conn.compute.create_server(
        name=f"exp-{RUN}", image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": network.id}]
    )
    try:
        admin_conn.compute.wait_for_server(created, status="ACTIVE", wait=BOOT_TIMEOUT, interval=2)
        yield str(created.id)
    finally:
        admin_conn.compute.delete_server(created.id, ignore_missing=True)


def make_service(sessions: sessionmaker[Session], handles: CloudHandles, **settings: object) -> ExportService:
    base: dict[str, object] = {"segment_size": MIB, "parallel_segments": 2, "per_cloud": 16, "per_target": 16}
    return ExportService(sessions, lambda _p, _r: handles, ExportSettings(**{**base, **settings}))  # type: ignore[arg-type]


def make_runner(sessions: sessionmaker[Session], service: ExportService, lease: float = 120.0) -> JobRunner:
    return JobRunner(
        sessions,
        service.handlers(),
        cleanups=service.cleanups(),
        backoff_initial=0.2,
        backoff_cap=1.0,
        lease_seconds=lease,
    )


def export_now(
    sessions: sessionmaker[Session], handles: CloudHandles, instance: str, target: str, **options: object
) -> tuple[ExportService, Job]:
    """Submit an export of `instance` with the test settings and run it to its end."""
    service = make_service(sessions, handles)
    request = ExportRequest("devcloud", instance, target, service.default_options(**options))
    return service, run_to_end(make_runner(sessions, service), service.submit(request, "tests").id)


def run_to_end(runner: JobRunner, job_id: str, timeout: float = 300) -> Job:
    deadline = time.monotonic() + timeout
    job = runner.run_one(job_id)
    while not job.state.is_final:
        assert time.monotonic() < deadline, f"job did not finish: {job}"
        time.sleep(0.3)
        job = runner.run_one(job_id)
    return job


def images_of_export(admin_conn: openstack.connection.Connection, job_id: str) -> list[str]:
    return [
        str(image.id)
        for image in admin_conn.image.images()
        if image.properties.get(EXPORT_PROPERTY) == job_id
    ]


def segment_names(swift: swiftclient.client.Connection, container: str) -> list[str]:
    listing = swift.get_container(container, prefix=f"{SEGMENTS_FOLDER}/", full_listing=True)[1]
    return [item["name"] for item in listing]


def test_snapshot_export_to_swift_holds_the_instance_disk(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    swift: swiftclient.client.Connection,
    container: str,
    server: str,
    admin_conn: openstack.connection.Connection,
) -> None:
    service = make_service(sessions, handles)
    runner = make_runner(sessions, service)
    request = ExportRequest("devcloud", server, f"swift://{container}/daily/", service.default_options())
    job = run_to_end(runner, service.submit(request, "tests").id)

    assert job.state is JobState.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total) == (SNAPSHOT_BYTES, SNAPSHOT_BYTES)
    export = service.get(job.id)
    assert export.state is ExportState.SUCCEEDED and export.location is not None
    location = parse_swift_url(export.location)
    assert location.container == container and location.name.startswith("daily/exp-")
    headers, body = swift.get_object(container, location.name)
    expected = snapshot_content(server)
    assert body == expected
    assert headers["x-static-large-object"] == "True"
    assert hashlib.sha256(body).hexdigest() == export.stored_sha256
    assert export.hash_algo == "sha512" and export.hash_value == hashlib.sha512(expected).hexdigest()
    manifest = swift.get_object(container, location.name + MANIFEST_SUFFIX)[1]
    assert f'"stored_sha256": "{export.stored_sha256}"' in manifest.decode()
    assert len([n for n in segment_names(swift, container) if location.name in n]) == 4  # 4 MiB in 1 MiB
    # The temporary snapshot is gone, and the listing of the target prefix shows only the export.
    assert images_of_export(admin_conn, job.id) == []
    listed = [item["name"] for item in swift.get_container(container, prefix="daily/")[1]]
    assert listed == [location.name, location.name + MANIFEST_SUFFIX]
    assert [e.id for e in service.list_exports(instance_id=server)][:1] == [job.id]


def test_export_to_a_local_file_with_gzip_keeps_the_snapshot_when_asked(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    server: str,
    tmp_path: Path,
    admin_conn: openstack.connection.Connection,
) -> None:
    service, job = export_now(
        sessions, handles, server, f"{tmp_path}/", compression=Compression.GZIP, keep_snapshot=True
    )

    assert job.state is JobState.SUCCEEDED, job.error
    export = service.get(job.id)
    assert export.location is not None and export.location.endswith(".raw.gz")
    stored = Path(export.location).read_bytes()
    assert gzip.decompress(stored) == snapshot_content(
        server
    )  # one gzip member per segment: still one stream
    assert hashlib.sha256(stored).hexdigest() == export.stored_sha256
    assert Path(export.location + MANIFEST_SUFFIX).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(export.location).name, Path(export.location).name + MANIFEST_SUFFIX]
    )
    kept = images_of_export(admin_conn, job.id)
    assert len(kept) == 1
    admin_conn.image.delete_image(kept[0])


@pytest.fixture(scope="module")
def big_image(handles: CloudHandles) -> Iterator[tuple[str, str, int]]:
    """A 300 MiB raw image uploaded to Glance (streamed), with its sha256."""
    size = 300 * MIB
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for piece in pattern_chunks(f"big-{RUN}", size):
            digest.update(piece)
            yield piece

    image = handles.images.create_image(ImageData(f"exp-big-{RUN}", "raw"))
    try:
        handles.images.upload(image.id, chunks(), size=size)
        yield image.id, digest.hexdigest(), size
    finally:
        handles.images.delete_image(image.id)


def test_an_image_larger_than_a_segment_becomes_a_large_object(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    swift: swiftclient.client.Connection,
    container: str,
    big_image: tuple[str, str, int],
) -> None:
    image_id, sha256, size = big_image
    service = make_service(sessions, handles, segment_size=64 * MIB, parallel_segments=3)
    options = service.default_options(image_id=image_id)
    job = run_to_end(
        make_runner(sessions, service),
        service.submit(ExportRequest("devcloud", None, f"swift://{container}/big/", options), "tests").id,
    )

    assert job.state is JobState.SUCCEEDED, job.error
    export = service.get(job.id)
    assert export.location is not None
    name = parse_swift_url(export.location).name
    headers, body = swift.get_object(container, name, resp_chunk_size=MIB)
    digest = hashlib.sha256()
    received = 0
    for piece in body:
        digest.update(piece)
        received += len(piece)
    assert (received, digest.hexdigest()) == (size, sha256)
    assert int(headers["content-length"]) == size
    assert len([n for n in segment_names(swift, container) if name in n]) == 5  # 300 MiB / 64 MiB


def test_an_interrupted_glance_download_resumes_with_a_range_request(
    sessions: sessionmaker[Session],
    devcloud: Devcloud,
    admin_credentials: Credentials,
    swift: swiftclient.client.Connection,
    container: str,
    big_image: tuple[str, str, int],
) -> None:
    image_id, sha256, size = big_image
    cut = FaultPlan(
        cut_body=1.0,
        cut_after=100 * MIB,
        services=frozenset({"glance"}),
        methods=frozenset({"GET"}),
        path_pattern=r"/file$",
        max_consecutive=1,
    )
    with FaultProxy(devcloud_upstreams(devcloud.ports), FaultPlan()) as proxy:
        conn = openstack.connect(
            **proxy.clouds_entry(admin_credentials), load_yaml_config=False, load_envvars=False
        )
        session = open_session(conn, name="proxied", policy=RetryPolicy(attempts=3, initial=0.2, cap=1.0))
        proxied = CloudHandles(ComputeGateway(session), ImageGateway(session), ObjectStoreGateway(session))
        service = make_service(sessions, proxied, segment_size=64 * MIB)
        job = service.submit(
            ExportRequest(
                "devcloud", None, f"swift://{container}/cut/", service.default_options(image_id=image_id)
            ),
            "tests",
        )
        proxy.set_plan(cut)
        proxy.clear()
        done = run_to_end(make_runner(sessions, service), job.id)
        downloads = [e for e in proxy.log if e.service == "glance" and e.path.endswith("/file")]

    assert done.state is JobState.SUCCEEDED, done.error
    assert done.attempts == 1  # resumed within the attempt, not by a retry of the job
    assert [e.fault for e in downloads] == [FaultKind.CUT_BODY, None]
    assert downloads[0].range is None and downloads[1].range is not None
    resumed_from = int(downloads[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= 100 * MIB
    export = service.get(done.id)
    assert export.location is not None
    body = swift.get_object(container, parse_swift_url(export.location).name, resp_chunk_size=MIB)[1]
    digest = hashlib.sha256()
    for piece in body:
        digest.update(piece)
    assert digest.hexdigest() == sha256 and export.source_bytes == size


def test_a_create_image_that_times_out_makes_exactly_one_snapshot(
    sessions: sessionmaker[Session],
    devcloud: Devcloud,
    admin_credentials: Credentials,
    server: str,
    tmp_path: Path,
    admin_conn: openstack.connection.Connection,
) -> None:
    slow = FaultPlan(
        delay=1.0,
        delay_seconds=6.0,
        services=frozenset({"nova"}),
        methods=frozenset({"POST"}),
        path_pattern=r"/servers/[^/]+/action$",
        max_consecutive=1,
    )
    with FaultProxy(devcloud_upstreams(devcloud.ports), slow) as proxy:
        conn = openstack.connect(
            **proxy.clouds_entry(admin_credentials), api_timeout=3, load_yaml_config=False, load_envvars=False
        )
        session = open_session(conn, name="proxied", policy=RetryPolicy(attempts=4, initial=0.5, cap=2.0))
        proxied = CloudHandles(ComputeGateway(session), ImageGateway(session), ObjectStoreGateway(session))
        service = make_service(sessions, proxied)
        options = service.default_options(keep_snapshot=True)
        job = run_to_end(
            make_runner(sessions, service),
            service.submit(ExportRequest("devcloud", server, f"{tmp_path}/", options), "tests").id,
        )
        delayed = proxy.counts[FaultKind.DELAY]

    assert job.state is JobState.SUCCEEDED, job.error
    assert delayed == 1
    snapshots = images_of_export(admin_conn, job.id)
    assert len(snapshots) == 1, snapshots  # the timed-out createImage was adopted, not repeated
    admin_conn.image.delete_image(snapshots[0])
    export = service.get(job.id)
    assert export.location is not None
    assert Path(export.location).read_bytes() == snapshot_content(server)


def test_cancel_mid_transfer_removes_the_segments_and_the_snapshot(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    swift: swiftclient.client.Connection,
    container: str,
    server: str,
    admin_conn: openstack.connection.Connection,
) -> None:
    service = make_service(sessions, handles)
    options = service.default_options(bandwidth=1024 * 1024)  # 4 s for the 4 MiB snapshot
    job = service.submit(ExportRequest("devcloud", server, f"swift://{container}/cancel/", options), "tests")
    runner = make_runner(sessions, service)
    worker = threading.Thread(target=runner.run_one, args=(job.id,))
    worker.start()
    deadline = time.monotonic() + 120
    while runner.get(job.id).progress_done < 1 * MIB:
        assert time.monotonic() < deadline and worker.is_alive(), runner.get(job.id)
        time.sleep(0.1)
    with transaction(sessions) as session:
        JobRepository(session).request_cancel(job.id, utcnow())
    worker.join(60)

    ended = runner.get(job.id)
    assert ended.state is JobState.CANCELLED
    assert ended.progress_done < SNAPSHOT_BYTES
    assert service.get(job.id).state is ExportState.CANCELLED
    assert [n for n in segment_names(swift, container) if "/cancel/" in n] == []
    assert swift.get_container(container, prefix="cancel/")[1] == []
    assert images_of_export(admin_conn, job.id) == []


def test_bad_targets_are_refused_before_any_snapshot(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    server: str,
    admin_conn: openstack.connection.Connection,
) -> None:
    service = make_service(sessions, handles)
    before = sum(1 for _ in admin_conn.image.images())
    with pytest.raises(NotFound, match=f"container 'missing-{RUN}' does not exist"):
        service.submit(
            ExportRequest("devcloud", server, f"swift://missing-{RUN}/x/", service.default_options()), "tests"
        )
    with pytest.raises(NotFound, match="no-such-server"):
        service.submit(
            ExportRequest("devcloud", "no-such-server", "/tmp/", service.default_options()), "tests"
        )
    with pytest.raises(ValidationError) as caught:
        service.submit(
            ExportRequest("devcloud", server, f"/nonexistent-{RUN}/dir/", service.default_options()), "tests"
        )
    assert caught.value.field == "target"
    with pytest.raises(ValidationError) as unsupported:
        service.default_options(segment_size=1024)
    assert unsupported.value.field == "segment_size"
    assert sum(1 for _ in admin_conn.image.images()) == before
    with sessions() as session:
        assert JobRepository(session).list_jobs(subject=server, state=JobState.QUEUED) == []


def test_a_target_without_write_permission_is_a_403_before_any_snapshot(
    sessions: sessionmaker[Session],
    admin_conn: openstack.connection.Connection,
    admin_credentials: Credentials,
    server: str,
) -> None:
    """A user with only the reader role may not write to Swift (keystoneauth operator_roles)."""
    project = admin_conn.identity.create_project(name=f"exp-ro-{RUN}", domain_id="default")
    password = uuid.uuid4().hex
    user = admin_conn.identity.create_user(name=f"exp-ro-{RUN}", password=password, domain_id="default")
    try:
        reader = admin_conn.identity.find_role("reader", ignore_missing=False)
        admin_conn.identity.assign_project_role_to_user(project, user, reader)
        conn = openstack.connect(
            auth_url=admin_credentials.auth_url,
            username=user.name,
            password=password,
            project_name=project.name,
            user_domain_name="Default",
            project_domain_name="Default",
            region_name=admin_credentials.region_name,
            load_yaml_config=False,
            load_envvars=False,
        )
        session = open_session(conn, name="reader", policy=RetryPolicy(attempts=1))
        # The instance lookup uses the admin's gateways; the target check uses the reader's account.
        admin = open_session(sdk_connection(admin_credentials), name="admin")
        handles = CloudHandles(ComputeGateway(admin), ImageGateway(admin), ObjectStoreGateway(session))
        service = make_service(sessions, handles)
        before = sum(1 for _ in admin_conn.image.images())
        with pytest.raises(Forbidden) as caught:
            service.submit(
                ExportRequest("devcloud", server, "swift://anything/x/", service.default_options()), "tests"
            )
        assert "anything" in str(caught.value)
        assert sum(1 for _ in admin_conn.image.images()) == before
    finally:
        admin_conn.identity.delete_user(user, ignore_missing=True)
        admin_conn.identity.delete_project(project, ignore_missing=True)


def test_a_full_disk_fails_the_job_and_removes_the_partial_file(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    big_image: tuple[str, str, int],
    tmp_path: Path,
) -> None:
    """A 16 MiB tmpfs cannot hold the 300 MiB image."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        service = make_service(sessions, handles, segment_size=4 * MIB)
        options = service.default_options(image_id=big_image[0])
        job = run_to_end(
            make_runner(sessions, service),
            service.submit(ExportRequest("devcloud", None, f"{mount}/", options), "tests").id,
        )
        assert job.state is JobState.FAILED
        assert job.error is not None and "no space left" in job.error
        assert list(mount.iterdir()) == []
        assert service.get(job.id).state is ExportState.FAILED
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_restore_an_export_from_swift_into_glance_and_boot_it(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    container: str,
    server: str,
    admin_conn: openstack.connection.Connection,
) -> None:
    service = make_service(sessions, handles)
    imports = ImportService(sessions, lambda _p, _r: handles)
    runner = JobRunner(
        sessions,
        {**service.handlers(), **imports.handlers()},
        cleanups={**service.cleanups(), **imports.cleanups()},
    )
    options = service.default_options(compression=Compression.ZSTD)
    exported = run_to_end(
        runner,
        service.submit(
            ExportRequest("devcloud", server, f"swift://{container}/restore/", options), "tests"
        ).id,
    )
    assert exported.state is JobState.SUCCEEDED, exported.error
    location = service.get(exported.id).location
    assert location is not None and location.endswith(".raw.zst")

    boot = BootSpec(name=f"restored-{RUN}", flavor="m1.tiny", networks=("private",))
    request = ImportRequest("devcloud", location, name=f"restored-{RUN}", boot=boot)
    job = run_to_end(runner, imports.submit(request, "tests").id)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result is not None
    image_id, instance_id = str(job.result["image_id"]), str(job.result["instance_id"])
    try:
        image = admin_conn.image.get_image(image_id)
        expected = snapshot_content(server)
        assert image.status == "active" and image.disk_format == "raw"
        assert image.size == len(expected)
        assert image.hash_value == hashlib.sha512(expected).hexdigest()  # decompressed on the way in
        assert admin_conn.compute.get_server(instance_id).status == "ACTIVE"
    finally:
        admin_conn.compute.delete_server(instance_id, ignore_missing=True)
        admin_conn.compute.wait_for_delete(admin_conn.compute.get_server(instance_id), wait=120)
        admin_conn.image.delete_image(image_id, ignore_missing=True)


def test_an_import_from_a_missing_object_is_a_404_naming_it(
    sessions: sessionmaker[Session], handles: CloudHandles, container: str
) -> None:
    imports = ImportService(sessions, lambda _p, _r: handles)
    with pytest.raises(NotFound, match=f"swift://{container}/nothing-here.raw"):
        imports.submit(ImportRequest("devcloud", f"swift://{container}/nothing-here.raw"), "tests")
    with pytest.raises(ValidationError) as caught:
        imports.submit(ImportRequest("devcloud", f"swift://{container}/"), "tests")
    assert caught.value.field == "source"


def test_prune_keeps_what_the_policy_keeps_and_deletes_the_rest_with_segments(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    swift: swiftclient.client.Connection,
    container: str,
    server: str,
) -> None:
    service = make_service(sessions, handles)
    runner = make_runner(sessions, service)
    lifecycle = ExportLifecycle(sessions, service, lambda _p, _r: handles, "devcloud")
    target = f"swift://{container}/prune/"
    made = []
    for _ in range(3):
        job = run_to_end(
            runner,
            service.submit(ExportRequest("devcloud", server, target, service.default_options()), "tests").id,
        )
        assert job.state is JobState.SUCCEEDED, job.error
        made.append(job.id)
    before = segment_names(swift, container)

    plan = lifecycle.prune(server, RetentionPolicy(keep_last=1), dry_run=True)
    ours = [line for line in plan if line.export.id in made]
    assert [(line.export.id, line.keep) for line in ours] == [
        (made[2], True),
        (made[1], False),
        (made[0], False),
    ]
    assert segment_names(swift, container) == before  # a dry run deletes nothing

    lifecycle.prune(server, RetentionPolicy(keep_last=1), dry_run=False)
    listed = [item["name"] for item in swift.get_container(container, prefix="prune/")[1]]
    newest = service.get(made[2]).location
    assert newest is not None
    assert listed == [parse_swift_url(newest).name, parse_swift_url(newest).name + MANIFEST_SUFFIX]
    remaining = [n for n in segment_names(swift, container) if "/prune/" in n]
    assert remaining and all(parse_swift_url(newest).name in n for n in remaining)
    assert [service.get(i).state for i in made] == [
        ExportState.PRUNED,
        ExportState.PRUNED,
        ExportState.SUCCEEDED,
    ]


def test_a_schedule_fires_once_per_cron_time_and_exports_its_instances(
    sessions: sessionmaker[Session], handles: CloudHandles, container: str, server: str
) -> None:
    clock = [utcnow()]
    service = make_service(sessions, handles)
    schedule = parse_schedules(
        [
            {
                "name": f"every-minute-{RUN}",
                "cron": "* * * * *",
                "target": f"swift://{container}/sched/",
                "instances": [server],
                "keep_last": 1,
            }
        ]
    )
    lifecycle = ExportLifecycle(
        sessions, service, lambda _p, _r: handles, "devcloud", schedule, now=lambda: clock[0]
    )
    runner = JobRunner(sessions, {**service.handlers(), **lifecycle.handlers()}, cleanups=service.cleanups())
    assert lifecycle.fire_due() == []  # nothing is due in the minute the schedule started
    clock[0] += timedelta(seconds=61)
    fired = lifecycle.fire_due()
    assert len(fired) == 1 and lifecycle.fire_due() == []  # fired once for that minute
    ran = run_to_end(runner, fired[0].id)
    assert ran.state is JobState.SUCCEEDED and ran.result is not None, ran.error
    exports = ran.result["exports"]
    assert isinstance(exports, list) and len(exports) == 1
    assert run_to_end(runner, str(exports[0])).state is JobState.SUCCEEDED
    assert service.get(str(exports[0])).instance_id == server


def test_schedule_settings_errors_name_the_entry_and_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedules([{"name": "x", "cron": "0 25 * * *", "target": "swift://c/", "tags": ["a"]}])
    assert caught.value.field == "exports.schedules[0].schedule"
    with pytest.raises(ValidationError) as no_selector:
        parse_schedules([{"name": "x", "cron": "@daily", "target": "swift://c/"}])
    assert no_selector.value.field == "exports.schedules[0]"


def test_an_export_converted_to_qcow2_with_qemu_img_holds_the_same_disk(
    sessions: sessionmaker[Session], handles: CloudHandles, server: str, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    service = ExportService(
        sessions,
        lambda _p, _r: handles,
        ExportSettings(segment_size=MIB, per_cloud=16, per_target=16),
        staging_dir=staging,
    )
    out = tmp_path / "out"
    out.mkdir()
    options = service.default_options(disk_format=DiskFormat.QCOW2)
    job = run_to_end(
        make_runner(sessions, service),
        service.submit(ExportRequest("devcloud", server, f"{out}/", options), "tests").id,
    )

    assert job.state is JobState.SUCCEEDED, job.error
    export = service.get(job.id)
    assert export.location is not None and export.location.endswith(".qcow2")
    assert export.disk_format == "qcow2"
    assert (
        export.hash_value == hashlib.sha512(snapshot_content(server)).hexdigest()
    )  # Glance's, checked first
    info = subprocess.run(
        ["qemu-img", "info", "--output", "json", export.location], capture_output=True, text=True, check=True
    )
    assert '"format": "qcow2"' in info.stdout
    back = tmp_path / "back.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", export.location, str(back)], check=True
    )
    assert back.read_bytes() == snapshot_content(server)
    assert not (staging / job.id).exists()  # the staging copy is gone


def test_quiesce_stops_the_instance_for_the_snapshot_and_starts_it_again(
    sessions: sessionmaker[Session],
    handles: CloudHandles,
    server: str,
    tmp_path: Path,
    admin_conn: openstack.connection.Connection,
) -> None:
    _, job = export_now(sessions, handles, server, f"{tmp_path}/", quiesce=True)

    assert job.state is JobState.SUCCEEDED, job.error
    # Nova's own record of what happened to the server, oldest first.
    actions = sorted(admin_conn.compute.server_actions(server), key=lambda a: a.start_time)
    names = [a.action for a in actions]
    last_stop = len(names) - 1 - names[::-1].index("stop")
    assert names[last_stop:] == ["stop", "createImage", "start"], names
    assert admin_conn.compute.get_server(server).status == "ACTIVE"


def test_an_export_waits_for_a_free_slot_on_its_cloud(
    sessions: sessionmaker[Session], handles: CloudHandles, big_image: tuple[str, str, int], tmp_path: Path
) -> None:
    """exports.per_cloud 1: while one export runs, the next waits (without using up attempts)."""
    service = make_service(sessions, handles, per_cloud=1)
    runner = make_runner(sessions, service)
    slow = service.default_options(image_id=big_image[0], bandwidth=20 * MIB)  # 15 s for 300 MiB
    first = service.submit(ExportRequest("devcloud", None, f"{tmp_path}/", slow), "tests")
    second = service.submit(
        ExportRequest("devcloud", None, f"{tmp_path}/", service.default_options(image_id=big_image[0])),
        "tests",
    )
    worker = threading.Thread(target=runner.run_one, args=(first.id,))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while service.get(first.id).state is not ExportState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        waited = runner.run_one(second.id)
        assert waited.state is JobState.QUEUED and waited.attempts == 0
        assert waited.error is not None and "free slot" in waited.error
        assert service.get(second.id).state is ExportState.QUEUED
    finally:
        with transaction(sessions) as session:
            JobRepository(session).request_cancel(first.id, utcnow())
        worker.join(120)
    assert runner.get(first.id).state is JobState.CANCELLED
    cancelled = runner.cancel(second.id)  # queued: cancelled and cleaned up at once
    assert cancelled.state is JobState.CANCELLED
    assert service.get(second.id).state is ExportState.CANCELLED
