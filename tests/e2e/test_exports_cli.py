"""The export CLI as a user runs it (subprocesses, SQLite in its own data dir) against the devcloud:
exports to Swift and stdout, prune, the Swift helpers, a restore, and bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import openstack.connection
import pytest

from stackyard.devcloud.access import clouds_yaml
from stackyard.devcloud.launcher import Devcloud

pytestmark = pytest.mark.devcloud

RUN = uuid.uuid4().hex[:6]
MIB = 1024 * 1024
DATA = b"stackyard cli export\n".ljust(512, b"\0") + hashlib.shake_256(RUN.encode()).digest(3 * MIB)


@pytest.fixture(scope="module")
def env(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("exports-cli")
    (directory / "clouds.yaml").write_text(clouds_yaml(devcloud))
    (directory / "stackyard.yaml").write_text("exports: {cloud: devcloud, segment_size: 1048576}\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKYARD_"))}
    return {
        **clean,
        "OS_CLIENT_CONFIG_FILE": str(directory / "clouds.yaml"),
        "STACKYARD_CONFIG": str(directory / "stackyard.yaml"),
        "STACKYARD_DATA_DIR": str(directory / "data"),
        "COLUMNS": "300",  # usage errors are drawn in a box: keep each message on one line
    }


@pytest.fixture(scope="module")
def container(admin_conn: openstack.connection.Connection) -> Iterator[str]:
    name = f"cliexp-{RUN}"
    admin_conn.object_store.create_container(name)
    yield name
    for item in list(admin_conn.object_store.objects(name)):
        admin_conn.object_store.delete_object(item, container=name)
    admin_conn.object_store.delete_container(name)


@pytest.fixture(scope="module")
def image(admin_conn: openstack.connection.Connection) -> Iterator[str]:
    created = admin_conn.image.create_image(
        name=f"cliexp-{RUN}", data=DATA, disk_format="raw", container_format="bare", wait=True
    )
    yield str(created.id)
    admin_conn.image.delete_image(created.id, ignore_missing=True)


def sy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, env=env, timeout=300)


def ok(env: dict[str, str], *args: str) -> object:
    result = sy(env, *args)
    assert result.returncode == 0, (args, result.stderr.decode()[-2000:])
    return json.loads(result.stdout)


def test_export_to_swift_then_download_and_restore(
    env: dict[str, str], container: str, image: str, tmp_path: Path
) -> None:
    export = ok(
        env,
        "exports",
        "run",
        "--image",
        image,
        "--to",
        f"swift://{container}/cli/",
        "--compress",
        "gzip",
        "-f",
        "json",
    )
    assert isinstance(export, dict) and export["state"] == "succeeded"
    assert export["source_bytes"] == len(DATA) and export["location"].endswith(".raw.gz")
    listed = ok(env, "swift", "list", f"swift://{container}/cli/", "-f", "json")
    assert isinstance(listed, list)
    assert sorted(item["name"] for item in listed) == sorted(
        [
            export["location"].removeprefix(f"swift://{container}/"),
            export["location"].removeprefix(f"swift://{container}/") + ".manifest.json",
        ]
    )
    target = tmp_path / "copy.raw.gz"
    result = sy(env, "swift", "download", export["location"], str(target))
    assert result.returncode == 0, result.stderr.decode()
    assert "sha256 from the export manifest" in result.stderr.decode()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == export["stored_sha256"]

    restored = ok(
        env, "images", "import", export["location"], "--name", f"cliexp-restored-{RUN}", "-f", "json"
    )
    assert isinstance(restored, dict)
    conn_image = restored["image_id"]
    assert restored["hash_value"] == hashlib.sha512(DATA).hexdigest()
    there = ok(env, "swift", "exists", export["location"], "-f", "json")
    assert isinstance(there, dict) and there["bytes"] == export["stored_bytes"]
    ok_delete = sy(env, "swift", "delete", export["location"])
    assert ok_delete.returncode == 0
    gone = sy(env, "swift", "exists", export["location"])
    assert gone.returncode == 1 and "no such object" in gone.stderr.decode()
    assert sy(env, "swift", "delete", export["location"]).returncode == 1  # already gone: reported, exit 1
    listing = ok(env, "swift", "list", f"swift://{container}/.stackyard-segments/cli/", "-f", "json")
    assert listing == []  # the large object's segments went with it
    assert conn_image


def test_export_to_stdout_is_the_image_bytes(env: dict[str, str], image: str) -> None:
    result = sy(env, "exports", "run", "--image", image, "--to", "-")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout == DATA


def test_prune_dry_run_lists_the_plan_and_deletes_nothing(
    env: dict[str, str], container: str, image: str
) -> None:
    for _ in range(2):
        ok(env, "exports", "run", "--image", image, "--to", f"swift://{container}/prune/", "-f", "json")
    plan = ok(env, "exports", "prune", "--keep-last", "1", "--dry-run", "-f", "json")
    assert isinstance(plan, list)
    actions = [line["action"] for line in plan if line["instance"] == f"cliexp-{RUN}"]
    assert actions.count("keep") >= 1 and "would delete" in actions and "deleted" not in actions
    assert (
        len(ok(env, "swift", "list", f"swift://{container}/prune/", "-f", "json")) == 4
    )  # 2 exports + manifests


def test_bad_input_names_what_is_wrong(env: dict[str, str], image: str) -> None:
    missing = sy(env, "exports", "run", "--image", image, "--to", f"swift://nope-{RUN}/x/")
    assert missing.returncode == 1 and f"container 'nope-{RUN}' does not exist" in missing.stderr.decode()
    bad_format = sy(env, "exports", "run", "--image", image, "--to", "/tmp/", "--disk-format", "qcow3")
    assert bad_format.returncode == 2 and b"qcow2" in bad_format.stderr
    no_target = sy(env, "exports", "run", "--image", image)
    assert no_target.returncode == 2 and b"--to" in no_target.stderr
