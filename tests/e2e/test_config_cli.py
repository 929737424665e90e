"""`stackyard config from-openrc` as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from stackyard.cloud.connect import CloudTarget, ConnectionPool, CredentialSource, resolve, verify_auth
from stackyard.devcloud.launcher import Devcloud

PASSWORD = "inline-pw-0815"

INLINE_RC = f"""\
export OS_AUTH_URL=https://keystone.example.org:5000/v3
export OS_PROJECT_NAME="course-cs101"
export OS_USER_DOMAIN_NAME="Default"
export OS_PROJECT_DOMAIN_NAME="Default"
export OS_USERNAME="alice"
export OS_PASSWORD='{PASSWORD}'
export OS_REGION_NAME="RegionOne"
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
"""

HORIZON_RC = """\
#!/usr/bin/env bash
export OS_AUTH_URL=https://keystone.example.org:5000/v3
export OS_PROJECT_ID=0123456789abcdef0123456789abcdef
export OS_PROJECT_NAME="course-cs101"
export OS_USER_DOMAIN_NAME="Default"
if [ -z "$OS_USER_DOMAIN_NAME" ]; then unset OS_USER_DOMAIN_NAME; fi
export OS_USERNAME="alice"
echo "Please enter your OpenStack Password for project $OS_PROJECT_NAME as user $OS_USERNAME: "
read -sr OS_PASSWORD_INPUT
export OS_PASSWORD=$OS_PASSWORD_INPUT
export OS_REGION_NAME="RegionOne"
if [ -z "$OS_REGION_NAME" ]; then unset OS_REGION_NAME; fi
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed in this environment"
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_prints_clouds_yaml_and_warns_that_it_holds_a_password(tmp_path: Path) -> None:
    rc = write(tmp_path / "cs101-openrc.sh", INLINE_RC)
    result = run("config", "from-openrc", str(rc))
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    entry = document["clouds"]["cs101"]  # name taken from Horizon's PROJECT-openrc.sh file name
    assert entry["auth"]["password"] == PASSWORD
    assert entry["auth_type"] == "password"
    assert entry["region_name"] == "RegionOne"
    assert "contains a secret" in result.stderr
    assert PASSWORD not in result.stderr


def test_a_prompted_password_is_reported_and_left_out(tmp_path: Path) -> None:
    rc = write(tmp_path / "openrc", HORIZON_RC)
    result = run("config", "from-openrc", str(rc), "--name", "teaching")
    assert result.returncode == 0, result.stderr
    entry = yaml.safe_load(result.stdout)["clouds"]["teaching"]
    assert "password" not in entry["auth"]
    assert "OS_PASSWORD is typed in at a prompt" in result.stderr
    assert "contains a secret" not in result.stderr


def test_split_secrets_writes_two_private_files(tmp_path: Path) -> None:
    rc = write(tmp_path / "openrc.sh", INLINE_RC)
    out = tmp_path / "conf"
    result = run(
        "config", "from-openrc", str(rc), "--name", "cs101", "--split-secrets", "--output-dir", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    clouds_yaml, secure_yaml = out / "clouds.yaml", out / "secure.yaml"
    for path in (clouds_yaml, secure_yaml):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert str(path) in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert PASSWORD not in clouds_yaml.read_text()
    assert yaml.safe_load(secure_yaml.read_text()) == {"clouds": {"cs101": {"auth": {"password": PASSWORD}}}}
    resolved = resolve(cloud="cs101", environ={}, config_files=[clouds_yaml], secure_files=[secure_yaml])
    assert resolved.cloud_region.config["auth"]["password"] == PASSWORD


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    rc = write(tmp_path / "openrc.sh", INLINE_RC)
    out = tmp_path / "conf"
    out.mkdir()
    write(out / "clouds.yaml", "clouds: {mine: {}}\n")
    result = run("config", "from-openrc", str(rc), "--output-dir", str(out))
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (out / "clouds.yaml").read_text() == "clouds: {mine: {}}\n"


def test_split_secrets_needs_an_output_dir(tmp_path: Path) -> None:
    rc = write(tmp_path / "openrc.sh", INLINE_RC)
    result = run("config", "from-openrc", str(rc), "--split-secrets")
    assert result.returncode == 2
    assert "--output-dir" in result.stderr
    assert result.stdout == ""


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("config", "from-openrc", str(tmp_path / "missing.sh"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_an_openrc_without_auth_url_is_a_usage_error(tmp_path: Path) -> None:
    rc = write(tmp_path / "openrc.sh", "export OS_USERNAME=alice\n")
    result = run("config", "from-openrc", str(rc))
    assert result.returncode == 2
    assert "OS_AUTH_URL" in result.stderr


@pytest.mark.devcloud
def test_devcloud_openrc_converted_and_used(devcloud: Devcloud, tmp_path: Path) -> None:
    env = {"STACKYARD_DEVCLOUD_DIR": str(devcloud.layout.root)}
    exported = run("devcloud", "env", "--user", "demo", env=env)
    assert exported.returncode == 0, exported.stderr
    rc = write(tmp_path / "demo-openrc.sh", exported.stdout)
    out = tmp_path / "conf"
    result = run("config", "from-openrc", str(rc), "--split-secrets", "--output-dir", str(out))
    assert result.returncode == 0, result.stderr
    sources = resolve(
        cloud="demo",
        environ={},
        config_files=[out / "clouds.yaml"],
        secure_files=[out / "secure.yaml"],
    )
    assert sources.kind is CredentialSource.CLOUDS_YAML
    with ConnectionPool(lambda target: sources) as pool:
        conn = pool.get(CloudTarget("demo"))
        verify_auth(conn)
        assert "m1.small" in {flavor.name for flavor in conn.compute.flavors()}
