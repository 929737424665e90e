"""Exports over HTTP: start one and follow its job, list and read exports, image and snapshot routes,
storage downloads, and who may do what (devcloud, PostgreSQL, 2 API workers)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openstack.connection
import pytest

from support.api_client import Api, error_of, field_of
from support.api_instances import DEVCLOUD, CreatedInstance

pytestmark = pytest.mark.devcloud

JOB_TIMEOUT = 180


@pytest.fixture(scope="module")
def admin(api: Api) -> Iterator[httpx.Client]:
    with api.as_admin() as client:
        yield client


@pytest.fixture(scope="module")
def container(admin_conn: openstack.connection.Connection) -> Iterator[str]:
    name = f"apiexp-{uuid.uuid4().hex[:6]}"
    admin_conn.object_store.create_container(name)
    yield name
    for item in list(admin_conn.object_store.objects(name)):
        admin_conn.object_store.delete_object(item, container=name)
    admin_conn.object_store.delete_container(name)


def follow(client: httpx.Client, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        response = client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.5)


def test_an_export_runs_as_a_job_with_byte_progress_and_is_listed_per_instance(
    admin: httpx.Client,
    admin_instance: CreatedInstance,
    container: str,
    admin_conn: openstack.connection.Connection,
) -> None:
    response = admin.post(
        "/api/v1/exports",
        json={"instance_id": admin_instance.id, "target": f"swift://{container}/api/", "compression": "zstd"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    job_id = body["job"]["id"]
    assert response.headers["location"] == f"/api/v1/jobs/{job_id}"
    assert body["export"]["state"] == "queued" and body["export"]["instance_id"] == admin_instance.id

    job = follow(admin, job_id)
    assert job["state"] == "succeeded", job
    assert job["kind"] == "export.run" and job["phase"] == "finishing"
    assert job["progress_total"] == job["progress_done"] > 0
    assert job["result"]["manifest"]["compression"] == "zstd"

    listed = admin.get("/api/v1/exports", params={"instance": admin_instance.id}).json()["items"]
    assert [e["id"] for e in listed][:1] == [job_id]
    export = admin.get(f"/api/v1/exports/{job_id}").json()
    assert export["state"] == "succeeded" and export["location"].startswith(f"swift://{container}/api/")
    name = export["location"].removeprefix(f"swift://{container}/")
    stored = admin_conn.object_store.download_object(name, container=container)
    assert hashlib.sha256(stored).hexdigest() == export["stored_sha256"]
    assert len(stored) == export["stored_bytes"]


def test_bad_export_requests_name_what_is_wrong(
    admin: httpx.Client, admin_instance: CreatedInstance, container: str
) -> None:
    missing = admin.post(
        "/api/v1/exports", json={"instance_id": admin_instance.id, "target": "swift://no-such-c/x/"}
    )
    assert "no-such-c" in str(error_of(missing, 404)["message"])
    unknown = admin.post(
        "/api/v1/exports", json={"instance_id": "0" * 32, "target": f"swift://{container}/x/"}
    )
    error_of(unknown, 404)
    bad_format = admin.post(
        "/api/v1/exports",
        json={"instance_id": admin_instance.id, "target": f"swift://{container}/", "disk_format": "qcow3"},
    )
    assert field_of(bad_format).endswith("disk_format")
    assert "qcow2" in bad_format.text  # the supported ones are listed
    small = admin.post(
        "/api/v1/exports",
        json={"instance_id": admin_instance.id, "target": f"swift://{container}/", "segment_size": 10},
    )
    assert field_of(small).endswith("segment_size")
    nothing = admin.post("/api/v1/exports", json={"target": f"swift://{container}/"})
    assert field_of(nothing) == "instance"
    extra = admin.post(
        "/api/v1/exports", json={"instance_id": admin_instance.id, "target": "x", "colour": "red"}
    )
    assert field_of(extra).endswith("colour")


def test_members_export_only_what_they_see_and_only_to_swift(
    demo_client: httpx.Client, admin_instance: CreatedInstance, container: str
) -> None:
    foreign = demo_client.post(
        "/api/v1/exports", json={"instance_id": admin_instance.id, "target": f"swift://{container}/x/"}
    )
    error_of(foreign, 404)  # the admin's instance does not exist for a member
    to_disk = demo_client.post("/api/v1/exports", json={"instance_id": admin_instance.id, "target": "/tmp/"})
    error_of(to_disk, 403)
    error_of(demo_client.post("/api/v1/imports", json={"source": f"swift://{container}/a.raw"}), 403)
    error_of(
        demo_client.post(
            "/api/v1/storage/download", json={"url": f"swift://{container}/a", "path": "/tmp/a"}
        ),
        403,
    )


def test_snapshot_with_a_client_token_is_made_once_and_readable_by_id(
    admin: httpx.Client, admin_instance: CreatedInstance, admin_conn: openstack.connection.Connection
) -> None:
    token = uuid.uuid4().hex
    path = f"/api/v1/providers/{DEVCLOUD}/instances/{admin_instance.id}/snapshot"
    first = admin.post(path, json={"name": f"apisnap-{token[:6]}", "client_token": token})
    assert first.status_code == 202, first.text
    image_id = first.json()["id"]
    try:
        again = admin.post(path, json={"name": f"apisnap-{token[:6]}", "client_token": token})
        assert again.status_code == 202 and again.json()["id"] == image_id
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            image = admin.get(f"/api/v1/providers/{DEVCLOUD}/images/{image_id}")
            assert image.status_code == 200, image.text
            if image.json()["status"] == "active":
                break
            assert time.monotonic() < deadline, image.json()
            time.sleep(1)
        detail = image.json()
        assert detail["hash_algo"] == "sha512" and len(detail["hash_value"]) == 128
        assert detail["properties"]["stackyard_snapshot"] == token
        error_of(admin.get(f"/api/v1/providers/{DEVCLOUD}/images/{'0' * 32}"), 404)
    finally:
        admin_conn.image.delete_image(image_id, ignore_missing=True)


def test_an_admin_downloads_an_object_to_the_server(
    admin: httpx.Client, container: str, admin_conn: openstack.connection.Connection, tmp_path: Path
) -> None:
    data = hashlib.shake_256(b"download").digest(3 * 1024 * 1024)
    admin_conn.object_store.upload_object(container=container, name="dl/one.bin", data=data)
    target = tmp_path / "one.bin"
    response = admin.post(
        "/api/v1/storage/download", json={"url": f"swift://{container}/dl/one.bin", "path": str(target)}
    )
    assert response.status_code == 202, response.text
    job = follow(admin, response.json()["id"])
    assert job["state"] == "succeeded", job
    assert target.read_bytes() == data
    assert job["result"]["verified"] == "md5 etag"
    missing = admin.post(
        "/api/v1/storage/download", json={"url": f"swift://{container}/dl/none", "path": str(target)}
    )
    error_of(missing, 404)
