"""The quotas-by-enrollment CLI as a user runs it (subprocesses, SQLite in its own data dir), against
the devcloud: profiles, courses, students, enrollments, plans and reconciliation, roster import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import openstack.connection
import pytest

from stackyard.devcloud.access import Credentials, clouds_yaml
from stackyard.devcloud.launcher import Devcloud
from support.clouds import sdk_connection

pytestmark = pytest.mark.devcloud

RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def env(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("quotas-cli")
    (directory / "clouds.yaml").write_text(clouds_yaml(devcloud))
    (directory / "stackyard.yaml").write_text(
        f"quotas: {{cloud: devcloud, project_pattern: 'cli{RUN}-{{student_number}}'}}\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKYARD_"))}
    return {
        **clean,
        "OS_CLIENT_CONFIG_FILE": str(directory / "clouds.yaml"),
        "STACKYARD_CONFIG": str(directory / "stackyard.yaml"),
        "STACKYARD_DATA_DIR": str(directory / "data"),
    }


@pytest.fixture(scope="module")
def admin_conn(admin_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    conn = sdk_connection(admin_credentials)
    yield conn
    # Every project this module's students got.
    for project in conn.identity.projects():
        if project.name.startswith(f"cli{RUN}-"):
            conn.identity.delete_project(project.id)
    conn.close()


def sy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


def ok(env: dict[str, str], *args: str) -> object:
    done = sy(env, *args, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def live_limits(env: dict[str, str], student: str) -> dict[str, int]:
    rows = ok(env, "quotas", "show", student)
    assert isinstance(rows, list)
    return {f"{r['service']}.{r['resource']}": r["limit"] for r in rows}


@pytest.fixture(scope="module")
def course(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    profile = tmp_path_factory.mktemp("profile") / "lab.yaml"
    profile.write_text("compute: {instances: 3, cores: 6}\nblock_storage: {gigabytes: 40}\n")
    saved = ok(env, "profiles", "set", "lab", "--file", str(profile), "--description", "lab machines")
    assert isinstance(saved, dict) and saved["version"] == 1
    today = date.today()
    created = ok(
        env, "courses", "create", "--code", "CLOUD1", "--term", "t1", "--name", "Clouds",
        "--start", (today - timedelta(days=5)).isoformat(), "--end", (today + timedelta(days=50)).isoformat(),
        "--profile", "lab",
    )  # fmt: skip
    assert isinstance(created, dict)
    return "CLOUD1@t1"


def test_enroll_reconcile_and_drop(
    env: dict[str, str], course: str, admin_conn: openstack.connection.Connection
) -> None:
    number = f"n{uuid.uuid4().hex[:6]}"
    student = ok(
        env, "students", "create", "--number", number, "--name", "Grace", "--email", f"{number}@uni.example"
    )
    assert isinstance(student, dict) and student["project_id"] and student["quota_in_sync"] is True
    project = admin_conn.identity.get_project(student["project_id"])
    assert project.name == f"cli{RUN}-{number}"
    baseline = live_limits(env, number)

    ok(env, "enrollments", "add", number, course)
    enrolled = live_limits(env, number)
    assert enrolled["compute.instances"] == baseline["compute.instances"] + 3
    assert enrolled["compute.cores"] == baseline["compute.cores"] + 6
    assert enrolled["block_storage.gigabytes"] == baseline["block_storage.gigabytes"] + 40
    assert admin_conn.compute.get_quota_set(student["project_id"]).instances == enrolled["compute.instances"]

    plan = sy(env, "quotas", "reconcile", "--student", number, "-f", "json")  # a dry run by default
    assert plan.returncode == 0, plan.stderr
    assert [line["outcome"] for line in json.loads(plan.stdout)] == ["unchanged"]
    assert "dry run" in plan.stderr
    applied = sy(env, "quotas", "reconcile", "--apply", "--student", number, "-f", "json")
    assert [line["outcome"] for line in json.loads(applied.stdout)] == ["unchanged"]

    quota = ok(env, "students", "quota", number)
    assert isinstance(quota, list)
    desired = {row["resource"]: row["desired"] for row in quota}
    assert desired["compute.instances"] == enrolled["compute.instances"]

    dropped = ok(env, "enrollments", "drop", number, course)
    assert isinstance(dropped, dict) and dropped["status"] == "dropped"
    assert live_limits(env, number) == baseline
    listed = ok(env, "enrollments", "list", number)
    assert isinstance(listed, list) and [e["status"] for e in listed] == ["dropped"]


def test_a_bad_roster_imports_nothing_and_names_every_bad_line(
    env: dict[str, str], course: str, tmp_path: Path
) -> None:
    numbers = [f"r{uuid.uuid4().hex[:6]}" for _ in range(3)]
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "student_number,name,email,course_code,term\n"
        f"{numbers[0]},Ann,{numbers[0]}@uni.example,CLOUD1,t1\n"
        f"{numbers[1]},Bob,bob-at-nowhere,CLOUD1,t1\n"
        f"{numbers[2]},Cy,{numbers[2]}@uni.example,CLOUD1,t1\n"
        f"bad number,Dee,dee@uni.example,CLOUD1,t1\n"
    )
    rejected = sy(env, "import", "roster", str(roster))
    assert rejected.returncode == 1
    assert f"{roster}:3: email" in rejected.stderr and f"{roster}:5: student_number" in rejected.stderr
    assert ok(env, "students", "list", "--search", numbers[0]) == []

    roster.write_text(
        "student_number,name,email,course_code,term\n"
        + "".join(f"{n},Student,{n}@uni.example,CLOUD1,t1\n" for n in numbers)
    )
    imported = sy(env, "import", "roster", str(roster))
    assert imported.returncode == 0, imported.stderr
    assert "3 students created" in imported.stderr and "3 updated" in imported.stderr  # reconciled: 3 updated
    for number in numbers:
        assert live_limits(env, number)["compute.instances"] >= 3
    jobs = ok(env, "jobs", "list")
    assert isinstance(jobs, list)
