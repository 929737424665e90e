"""Quotas by enrollment over HTTP: every route, who may see what, and bad input (PostgreSQL, 2 workers)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import openstack.connection
import pytest

from support.api_client import Api, Credential, auth_headers, error_of

pytestmark = pytest.mark.devcloud

LAB = {"compute": {"instances": 2, "cores": 2, "ram": 1024}, "block_storage": {"volumes": 1, "gigabytes": 5}}
JOB_TIMEOUT = 120


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin(api: Api) -> Iterator[httpx.Client]:
    with api.as_admin() as client:
        yield client


@pytest.fixture(scope="module")
def lab_profile(admin: httpx.Client) -> str:
    name = unique("lab")
    response = admin.put(f"/api/v1/profiles/{name}", json={"values": LAB, "description": "API tests"})
    assert response.status_code == 200, response.text
    assert response.json()["profile"]["version"] == 1
    return name


def new_course(admin: httpx.Client, profile: str, **extra: object) -> dict[str, object]:
    today = date.today()
    body: dict[str, object] = {
        "code": unique("CS"),
        "term": "2026-fall",
        "name": "Clouds",
        "start_date": (today - timedelta(days=10)).isoformat(),
        "end_date": (today + timedelta(days=60)).isoformat(),
        "profile": profile,
    }
    body.update(extra)
    response = admin.post("/api/v1/courses", json=body)
    assert response.status_code == 201, response.text
    course = response.json()
    assert isinstance(course, dict)
    return course


@pytest.fixture(scope="module")
def created_projects(admin_conn: openstack.connection.Connection) -> Iterator[list[str]]:
    """Projects the API made for students; deleted at the end of the module."""
    projects: list[str] = []
    yield projects
    for project_id in projects:
        admin_conn.identity.delete_project(project_id, ignore_missing=True)


def new_student(admin: httpx.Client, created_projects: list[str], **extra: object) -> dict[str, object]:
    number = unique("s")
    body: dict[str, object] = {
        "student_number": number,
        "name": "Ada Lovelace",
        "email": f"{number}@uni.example",
    }
    body.update(extra)
    response = admin.post("/api/v1/students", json=body)
    assert response.status_code == 201, response.text  # the cloud answered in time: the project exists
    change = response.json()
    assert change["job"]["state"] == "succeeded", change
    student = change["student"]
    assert isinstance(student, dict) and student["keystone_project_id"]
    created_projects.append(str(student["keystone_project_id"]))
    return student


def limits(admin: httpx.Client, project_id: object) -> dict[str, dict[str, int]]:
    response = admin.get("/api/v1/quota/current", params={"projectId": project_id})
    assert response.status_code == 200, response.text
    services = response.json()["services"]
    return {name: service["limits"] for name, service in services.items()}


def wait_job(client: httpx.Client, path: str) -> dict[str, object]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        response = client.get(path)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            assert isinstance(job, dict)
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.5)


def test_enroll_and_drop_change_the_live_quota(
    admin: httpx.Client, lab_profile: str, created_projects: list[str]
) -> None:
    student = new_student(admin, created_projects)
    baseline = limits(admin, student["keystone_project_id"])
    course = new_course(admin, lab_profile)

    response = admin.post(f"/api/v1/students/{student['id']}/enroll", json={"course_id": course["id"]})
    assert response.status_code == 201, response.text
    assert response.json()["job"]["state"] == "succeeded"
    enrolled = limits(admin, student["keystone_project_id"])
    assert enrolled["compute"]["instances"] == baseline["compute"]["instances"] + 2
    assert enrolled["compute"]["ram"] == baseline["compute"]["ram"] + 1024
    assert enrolled["block_storage"]["gigabytes"] == baseline["block_storage"]["gigabytes"] + 5

    listed = admin.get(f"/api/v1/students/{student['id']}/enrollments").json()["items"]
    assert [(e["course_id"], e["status"]) for e in listed] == [(course["id"], "active")]
    quota = admin.get(f"/api/v1/students/{student['id']}/quota").json()
    assert quota["in_sync"] is True and quota["pending"] == []
    assert quota["desired"]["compute"]["instances"] == enrolled["compute"]["instances"]

    response = admin.delete(f"/api/v1/students/{student['id']}/enroll/{course['id']}")
    assert response.status_code == 200, response.text
    assert response.json()["enrollment"]["status"] == "dropped"
    assert limits(admin, student["keystone_project_id"]) == baseline

    events = admin.get("/api/v1/audit", params={"studentId": student["id"]}).json()["items"]
    writes = [e for e in events if e["action"] == "quota.set"]
    assert {e["reason"] for e in writes} >= {"enroll", "drop"}
    assert all(e["request_ids"] and e["outcome"] == "applied" for e in writes), writes  # the cloud's ids

    reclaim = admin.post(f"/api/v1/students/{student['id']}/reclaim", json={"dry_run": True})
    assert reclaim.status_code == 202, reclaim.text
    job = wait_job(admin, reclaim.headers["location"])
    assert job["state"] == "succeeded" and job["result"]["dry_run"] is True  # type: ignore[index]
    assert job["result"]["steps"] == []  # type: ignore[index]  # it holds nothing beyond its quota


def test_bad_enrollments_are_refused_with_the_reason(
    admin: httpx.Client, lab_profile: str, created_projects: list[str]
) -> None:
    first, second = new_student(admin, created_projects), new_student(admin, created_projects)
    full = new_course(admin, lab_profile, max_enrollments=1)
    assert (
        admin.post(f"/api/v1/students/{first['id']}/enroll", json={"course_id": full["id"]}).status_code
        == 201
    )

    twice = error_of(
        admin.post(f"/api/v1/students/{first['id']}/enroll", json={"course_id": full["id"]}), 409
    )
    assert "already enrolled" in str(twice["message"])
    no_seat = error_of(
        admin.post(f"/api/v1/students/{second['id']}/enroll", json={"course_id": full["id"]}), 409
    )
    assert "full" in str(no_seat["message"])
    ended = new_course(
        admin,
        lab_profile,
        start_date=(date.today() - timedelta(days=100)).isoformat(),
        end_date=(date.today() - timedelta(days=1)).isoformat(),
    )
    past = error_of(
        admin.post(f"/api/v1/students/{second['id']}/enroll", json={"course_id": ended["id"]}), 409
    )
    assert "ended" in str(past["message"])
    error_of(
        admin.post(f"/api/v1/students/{second['id']}/enroll", json={"course_id": str(uuid.uuid4())}), 404
    )
    error_of(admin.delete(f"/api/v1/students/{second['id']}/enroll/{full['id']}"), 404)


def test_bad_values_name_the_field(admin: httpx.Client, lab_profile: str) -> None:
    negative = error_of(
        admin.put("/api/v1/profiles/broken", json={"values": {"compute": {"cores": -1}}}), 422
    )
    assert negative["details"] == {"field": "values.compute.cores"}
    fraction = error_of(admin.put("/api/v1/profiles/broken", json={"values": {"compute": {"ram": 1.5}}}), 422)
    assert fraction["details"] == {"field": "values.compute.ram"}
    unknown = error_of(admin.put("/api/v1/profiles/broken", json={"values": {"compute": {"gpus": 1}}}), 422)
    assert unknown["details"] == {"field": "values.compute.gpus"}
    assert admin.get("/api/v1/profiles/broken").status_code == 404  # nothing was stored
    nul = error_of(
        admin.post("/api/v1/students", json={"student_number": "s1", "name": "a\x00b", "email": "a@b.cd"}),
        422,
    )
    assert nul["details"]["field"] == "name"  # type: ignore[index]
    assert error_of(admin.get("/api/v1/students", params={"q": "a\x00"}), 422)["details"] == {
        "field": "query"
    }
    huge = error_of(admin.get("/api/v1/audit", params={"before": 2**40}), 422)
    assert huge["details"]["field"] == "before"  # type: ignore[index]

    email = error_of(
        admin.post(
            "/api/v1/students", json={"student_number": unique("s"), "name": "x", "email": "not-an-email"}
        ),
        422,
    )
    assert email["details"] == {"field": "email"}
    dates = error_of(
        admin.post(
            "/api/v1/courses",
            json={
                "code": "X",
                "term": "t",
                "name": "x",
                "start_date": "2026-02-01",
                "end_date": "2026-01-01",
                "profile": lab_profile,
            },
        ),
        422,
    )
    assert dates["details"] == {"field": "end_date"}
    error_of(
        admin.post(
            "/api/v1/courses",
            json={
                "code": "X",
                "term": "t",
                "name": "x",
                "start_date": "2026-01-01",
                "end_date": "2026-02-01",
                "profile": "nope",
            },
        ),
        404,
    )


def test_a_member_sees_only_their_own_student(
    api: Api, admin: httpx.Client, lab_profile: str, created_projects: list[str]
) -> None:
    mine, other = new_student(admin, created_projects), new_student(admin, created_projects)
    response = admin.post(
        "/api/v1/api-keys",
        json={"name": "student", "role": "member", "project_id": mine["keystone_project_id"]},
    )
    assert response.status_code == 201, response.text
    with api.client(auth_headers(Credential.BEARER, response.json()["key"])) as member:
        listed = member.get("/api/v1/students").json()["items"]
        assert [s["id"] for s in listed] == [mine["id"]]
        assert member.get(f"/api/v1/students/{mine['id']}").status_code == 200
        assert member.get(f"/api/v1/students/{mine['id']}/quota").status_code == 200
        assert member.get(f"/api/v1/students/{mine['id']}/enrollments").status_code == 200
        error_of(member.get(f"/api/v1/students/{other['id']}"), 404)
        error_of(member.get(f"/api/v1/students/{other['id']}/quota"), 404)
        assert (
            member.get("/api/v1/quota/current", params={"projectId": mine["keystone_project_id"]}).status_code
            == 200
        )
        error_of(member.get("/api/v1/quota/current", params={"projectId": other["keystone_project_id"]}), 403)
        error_of(
            member.post("/api/v1/students", json={"student_number": "x", "name": "x", "email": "x@y.z"}), 403
        )
        error_of(member.post(f"/api/v1/students/{mine['id']}/enroll", json={"course_id": "x"}), 403)
        error_of(member.get("/api/v1/audit", params={"studentId": other["id"]}), 403)
        assert member.get("/api/v1/audit").status_code == 200


def test_courses_profiles_and_students_can_be_read_and_changed(
    admin: httpx.Client, lab_profile: str, created_projects: list[str]
) -> None:
    course = new_course(admin, lab_profile)
    assert admin.get(f"/api/v1/courses/{course['id']}").json()["enrolled"] == 0
    assert course["id"] in {
        c["id"] for c in admin.get("/api/v1/courses", params={"q": course["code"]}).json()["items"]
    }
    renamed = admin.patch(f"/api/v1/courses/{course['id']}", json={"name": "Clouds II"})
    assert renamed.status_code == 200 and renamed.json()["course"]["name"] == "Clouds II"
    duplicate = {k: course[k] for k in ("code", "term", "name", "start_date", "end_date", "profile")}
    error_of(admin.post("/api/v1/courses", json=duplicate), 409)

    assert lab_profile in {p["name"] for p in admin.get("/api/v1/profiles").json()["items"]}
    assert "baseline" in {p["name"] for p in admin.get("/api/v1/profiles").json()["items"]}
    second = admin.put(f"/api/v1/profiles/{lab_profile}", json={"values": LAB, "description": "again"})
    assert second.json()["profile"]["version"] == 2
    versions = admin.get(f"/api/v1/profiles/{lab_profile}/versions").json()["items"]
    assert [v["version"] for v in versions] == [2, 1]

    student = new_student(admin, created_projects)
    error_of(
        admin.post("/api/v1/students", json={k: student[k] for k in ("student_number", "name", "email")}), 409
    )
    suspended = admin.patch(f"/api/v1/students/{student['id']}", json={"status": "suspended"})
    assert suspended.status_code == 200, suspended.text
    assert limits(admin, student["keystone_project_id"])["compute"]["instances"] == 0
    assert student["id"] in {
        s["id"] for s in admin.get("/api/v1/students", params={"status": "suspended"}).json()["items"]
    }

    removed = admin.delete(f"/api/v1/students/{student['id']}")
    assert removed.status_code == 202, removed.text
    job = wait_job(admin, f"/api/v1/jobs/{removed.json()['job']['id']}")
    assert job["state"] == "succeeded", job
    error_of(admin.get(f"/api/v1/students/{student['id']}"), 404)


def test_bulk_reconciliation_plans_then_applies(
    admin: httpx.Client,
    lab_profile: str,
    created_projects: list[str],
    admin_conn: openstack.connection.Connection,
) -> None:
    student = new_student(admin, created_projects)
    course = new_course(admin, lab_profile)
    admin.post(f"/api/v1/students/{student['id']}/enroll", json={"course_id": course["id"]})
    admin_conn.set_compute_quotas(student["keystone_project_id"], cores=99)  # drift

    response = admin.post("/api/v1/reconciliation/bulk", json={"student_ids": [student["id"]]})
    assert response.status_code == 202, response.text
    run = wait_job(admin, response.headers["location"])
    assert run["state"] == "succeeded", run
    result = run["result"]
    assert isinstance(result, dict) and result["dry_run"] is True
    (line,) = result["projects"]
    assert line["drift"] == {"compute.cores": {"applied": 2, "found": 99}}
    assert limits(admin, student["keystone_project_id"])["compute"]["cores"] == 99  # the plan wrote nothing

    response = admin.post(
        "/api/v1/reconciliation/bulk", json={"student_ids": [student["id"]], "dry_run": False}
    )
    run = wait_job(admin, f"/api/v1/reconciliation/runs/{response.json()['id']}")
    assert isinstance(run["result"], dict) and run["result"]["counts"]["updated"] == 1
    assert limits(admin, student["keystone_project_id"])["compute"]["cores"] == 2
    assert run["progress_done"] == run["progress_total"] == 1
    assert any(
        j["id"] == run["id"]
        for j in admin.get("/api/v1/jobs", params={"kind": "quota.reconcile"}).json()["items"]
    )
    assert run["id"] in {r["id"] for r in admin.get("/api/v1/reconciliation/runs").json()}
    finished = admin.post(f"/api/v1/jobs/{run['id']}/cancel")
    assert finished.status_code == 200 and finished.json()["state"] == "succeeded"  # too late: unchanged
    error_of(admin.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel"), 404)


def test_apply_profile_writes_a_project_directly(
    admin: httpx.Client, lab_profile: str, created_projects: list[str]
) -> None:
    student = new_student(admin, created_projects)
    response = admin.post(
        "/api/v1/quota/applyProfile",
        json={"project_id": student["keystone_project_id"], "profile": lab_profile},
    )
    assert response.status_code == 200, response.text
    assert limits(admin, student["keystone_project_id"])["compute"]["instances"] == 2
    assert response.json()["written"]["compute"]["instances"] == 2


def test_roster_import_is_all_or_nothing(
    admin: httpx.Client,
    lab_profile: str,
    created_projects: list[str],
    admin_conn: openstack.connection.Connection,
) -> None:
    course = new_course(admin, lab_profile)
    numbers = [unique("r") for _ in range(3)]
    header = "student_number,name,email,course_code,term\n"
    bad = header + (
        f"{numbers[0]},Ann,{numbers[0]}@uni.example,{course['code']},{course['term']}\n"
        f"{numbers[1]},Bob,not-an-email,{course['code']},{course['term']}\n"
        f"no spaces allowed,Cy,{numbers[2]}@uni.example,{course['code']},{course['term']}\n"
    )
    rejected = error_of(
        admin.post("/api/v1/import/roster", content=bad, headers={"content-type": "text/csv"}), 422
    )
    rows = rejected["details"]["rows"]  # type: ignore[index]
    assert [(row["line"], row["field"]) for row in rows] == [(3, "email"), (4, "student_number")], rows
    unknown_course = header + (
        f"{numbers[0]},Ann,{numbers[0]}@uni.example,{course['code']},{course['term']}\n"
        f"{numbers[1]},Bob,{numbers[1]}@uni.example,NOPE,{course['term']}\n"
    )
    rejected = error_of(
        admin.post("/api/v1/import/roster", content=unknown_course, headers={"content-type": "text/csv"}), 422
    )
    assert [row["line"] for row in rejected["details"]["rows"]] == [3]  # type: ignore[index]
    assert admin.get("/api/v1/students", params={"q": numbers[0]}).json()["items"] == []  # nothing imported

    good = header + "".join(
        f"{n},Student {n},{n}@uni.example,{course['code']},{course['term']}\n" for n in numbers
    )
    response = admin.post("/api/v1/import/roster", content=good, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["students_created"], summary["enrollments_created"]) == (3, 3)
    run = wait_job(admin, f"/api/v1/reconciliation/runs/{summary['reconciliation']['id']}")
    assert run["state"] == "succeeded" and run["result"]["counts"]["updated"] == 3, run  # type: ignore[index]
    for number in numbers:
        (student,) = admin.get("/api/v1/students", params={"q": number}).json()["items"]
        created_projects.append(student["keystone_project_id"])
        assert limits(admin, student["keystone_project_id"])["compute"]["instances"] == 2
