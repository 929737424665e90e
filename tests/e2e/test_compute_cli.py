"""The compute CLI as a user runs it (a subprocess with a clouds.yaml), against the devcloud."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stackyard.devcloud.access import clouds_yaml
from stackyard.devcloud.launcher import Devcloud

pytestmark = pytest.mark.devcloud


@pytest.fixture(scope="module")
def cli_env(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("clouds")
    path = directory / "clouds.yaml"
    path.write_text(clouds_yaml(devcloud))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(path)
    env["STACKYARD_CONFIG"] = str(directory / "stackyard.yaml")
    (directory / "stackyard.yaml").write_text("retry: {attempts: 5, initial: 0.5, cap: 5}\n")
    return env


def sy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def server(cli_env: dict[str, str]) -> Iterator[str]:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = sy(
        cli_env,
        "instances",
        "create",
        name,
        "--flavor",
        "m1.tiny",
        "--image",
        "devcloud-raw",
        "--network",
        "private",
        "--property",
        "team=ops",
        "--tag",
        "cli",
        "--user-data-text",
        "#cloud-config\n",
        "--wait",
        "--cloud",
        "devcloud-demo",
        "-f",
        "json",
    )
    assert created.returncode == 0, created.stderr
    view = json.loads(created.stdout)
    assert view["status"] == "ACTIVE"
    yield view["id"]
    sy(cli_env, "instances", "delete", view["id"], "--cloud", "devcloud-demo")


def test_list_in_every_format(cli_env: dict[str, str], server: str) -> None:
    as_json = json.loads(sy(cli_env, "instances", "list", "--cloud", "devcloud-demo", "-f", "json").stdout)
    row = next(r for r in as_json if r["id"] == server)
    assert row["status"] == "ACTIVE" and row["flavor"] == "m1.tiny"
    assert row["internal_ips"] and row["external_ips"] == []
    as_yaml = yaml.safe_load(
        sy(cli_env, "instances", "list", "--cloud", "devcloud-demo", "-f", "yaml").stdout
    )
    assert server in {r["id"] for r in as_yaml}
    as_csv = list(
        csv.DictReader(
            io.StringIO(sy(cli_env, "instances", "list", "--cloud", "devcloud-demo", "-f", "csv").stdout)
        )
    )
    assert server in {r["id"] for r in as_csv}
    values = sy(
        cli_env, "instances", "list", "--cloud", "devcloud-demo", "-f", "value", "--property", "team=ops"
    ).stdout
    assert values.split()[0] == server
    table = sy(cli_env, "instances", "list", "--cloud", "devcloud-demo", "--long")
    assert table.returncode == 0 and server[:8] in table.stdout


def test_show_status_and_metadata(cli_env: dict[str, str], server: str) -> None:
    shown = json.loads(
        sy(cli_env, "instances", "show", server, "--cloud", "devcloud-demo", "-f", "json").stdout
    )
    assert shown["metadata"]["team"] == "ops" and shown["tags"] == ["cli"]
    assert shown["image_name"] == "devcloud-raw" and shown["flavor"] == "m1.tiny" and shown["vcpus"] == 1
    assert sy(cli_env, "instances", "status", server, "--cloud", "devcloud-demo").stdout.split() == [
        "ACTIVE",
        "RUNNING",
    ]
    assert (
        sy(cli_env, "instances", "metadata", "set", server, "a=1", "--cloud", "devcloud-demo").returncode == 0
    )
    assert (
        sy(cli_env, "instances", "metadata", "unset", server, "team", "--cloud", "devcloud-demo").returncode
        == 0
    )
    shown = json.loads(
        sy(cli_env, "instances", "show", server, "--cloud", "devcloud-demo", "-f", "json").stdout
    )
    assert shown["metadata"].get("a") == "1" and "team" not in shown["metadata"]


def test_stop_start_reboot(cli_env: dict[str, str], server: str) -> None:
    for verb, expected in (
        ("stop", "SHUTOFF"),
        ("stop", "SHUTOFF"),
        ("start", "ACTIVE"),
        ("reboot", "ACTIVE"),
    ):
        result = sy(cli_env, "instances", verb, server, "--wait", "--cloud", "devcloud-demo")
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().endswith(expected)


def test_errors_are_one_line_with_exit_codes(cli_env: dict[str, str], tmp_path: Path) -> None:
    unknown = sy(
        cli_env,
        "instances",
        "create",
        "x",
        "--flavor",
        "m1.tinyy",
        "--image",
        "devcloud-raw",
        "--cloud",
        "devcloud-demo",
    )
    assert unknown.returncode == 2
    assert (
        unknown.stderr.strip()
        == "error: flavor: no flavor named or with id 'm1.tinyy'; did you mean 'm1.tiny'?"
    )
    bad_file = sy(
        cli_env,
        "instances",
        "create",
        "x",
        "--flavor",
        "m1.tiny",
        "--image",
        "devcloud-raw",
        "--user-data",
        str(tmp_path / "missing.yaml"),
        "--cloud",
        "devcloud-demo",
    )
    assert bad_file.returncode == 2 and "user_data: no such file" in bad_file.stderr
    missing = sy(cli_env, "instances", "show", "no-such-server-xyz", "--cloud", "devcloud-demo")
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    no_cloud = sy(cli_env, "instances", "list", "--cloud", "nope")
    assert no_cloud.returncode == 2 and "nope" in no_cloud.stderr
    gone = sy(cli_env, "instances", "delete", str(uuid.uuid4()), "--cloud", "devcloud-demo")
    assert gone.returncode == 0 and "already gone" in gone.stderr


def test_regions_flavors_images_keypairs(cli_env: dict[str, str], tmp_path: Path) -> None:
    regions = json.loads(sy(cli_env, "regions", "list", "--cloud", "devcloud", "-f", "json").stdout)
    assert regions[0]["id"] == "RegionOne" and "compute" in regions[0]["services"]
    flavors = json.loads(sy(cli_env, "flavors", "list", "--cloud", "devcloud", "-f", "json").stdout)
    assert [f["name"] for f in flavors][:2] == ["m1.tiny", "m1.small"]
    images = json.loads(sy(cli_env, "images", "list", "--cloud", "devcloud", "-f", "json").stdout)
    assert "devcloud-raw" in {i["name"] for i in images}
    image = json.loads(
        sy(cli_env, "images", "show", "devcloud-raw", "--cloud", "devcloud", "-f", "json").stdout
    )
    assert image["hash_algo"] == "sha512" and len(image["hash_value"]) == 128
    name = f"kp-{uuid.uuid4().hex[:6]}"
    key = tmp_path / "id_test"
    created = sy(cli_env, "keypairs", "create", name, "--private-key", str(key), "--cloud", "devcloud-demo")
    assert created.returncode == 0, created.stderr
    assert "PRIVATE KEY" in key.read_text() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE KEY" not in created.stdout + created.stderr
    listed = sy(cli_env, "keypairs", "list", "--cloud", "devcloud-demo", "-f", "value").stdout
    assert name in listed
    assert "deleted" in sy(cli_env, "keypairs", "delete", name, "--cloud", "devcloud-demo").stderr
    public = tmp_path / "id.pub"
    public.write_text("not a key")
    bad = sy(cli_env, "keypairs", "import", name, "--public-key", str(public), "--cloud", "devcloud-demo")
    assert bad.returncode == 2 and "public_key" in bad.stderr
