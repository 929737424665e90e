"""Roster uploads (line-numbered errors, all or nothing), reconciliation plans and applies, in the browser."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import openstack.connection
import pytest

from support.browser import Browser, Dashboard

pytestmark = pytest.mark.devcloud

RUN_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def course(dashboard: Dashboard) -> dict[str, str]:
    tag = uuid.uuid4().hex[:6]
    today = date.today()
    with dashboard.api() as api:
        saved = api.put(
            f"/api/v1/profiles/webrc{tag}", json={"values": {"compute": {"cores": 2, "instances": 1}}}
        )
        assert saved.status_code == 200, saved.text
        created = api.post(
            "/api/v1/courses",
            json={
                "code": f"RC{tag}",
                "term": "2026-fall",
                "name": "Reconciled",
                "start_date": (today - timedelta(days=1)).isoformat(),
                "end_date": (today + timedelta(days=30)).isoformat(),
                "profile": f"webrc{tag}",
            },
        )
    assert created.status_code == 201, created.text
    return {"id": created.json()["id"], "code": f"RC{tag}", "tag": tag}


@pytest.fixture(scope="module")
def students(
    dashboard: Dashboard, course: dict[str, str], admin_conn: openstack.connection.Connection
) -> Iterator[list[str]]:
    """The student numbers the roster registers; their projects are deleted at the end."""
    numbers = [f"rc{course['tag']}a", f"rc{course['tag']}b"]
    yield numbers
    with dashboard.api() as api:
        for number in numbers:
            for student in api.get("/api/v1/students", params={"q": number}).json()["items"]:
                if student["keystone_project_id"]:
                    admin_conn.identity.delete_project(student["keystone_project_id"], ignore_missing=True)


def upload(browser: Browser, path: Path) -> None:
    browser.open("/ui/roster")
    browser.wait_for("#roster-form button[type=submit]")
    browser.wait_for("#file").send_keys(str(path))
    browser.find("#roster-form button[type=submit]").click()
    browser.wait_for("main h1")


def wait_run(browser: Browser, came_from: str) -> None:
    """Once on a run's page: the progress polls in place, then the page reloads itself to show the result."""
    browser.wait_until(
        "a run's page",
        lambda: browser.path.startswith("/ui/reconciliation/") and browser.path != came_from,
    )
    browser.wait_until(
        "the run's result",
        lambda: bool(browser.finds("table#plan")) and "succeeded" in browser.find("section.card").text,
        RUN_TIMEOUT,
    )


def test_a_bad_roster_is_refused_with_every_bad_line_and_imports_nothing(
    admin_browser: Browser, course: dict[str, str], students: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad-roster.csv"
    path.write_text(
        "student_number,name,email,course_code,term\n"
        f"{students[0]},Ada,{students[0]}@uni.example,{course['code']},2026-fall\n"
        f"{students[1]},Bob,not-an-email,{course['code']},2026-fall\n"
        f",Carol,carol@uni.example,{course['code']},2026-fall\n"
    )
    upload(admin_browser, path)
    rows = [r.text for r in admin_browser.finds("#roster-errors tbody tr")]
    assert len(rows) == 2, rows
    assert rows[0].startswith("3 email") and rows[1].startswith("4 student_number")
    assert "bad-roster.csv was not imported: 2 problems" in admin_browser.text()
    admin_browser.shot("roster-errors")
    admin_browser.open(f"/ui/students?q={students[0]}")
    assert "No students match." in admin_browser.find("#students").text  # all or nothing


def test_a_good_roster_is_imported_and_its_quotas_applied_by_a_run(
    admin_browser: Browser, course: dict[str, str], students: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(
        "student_number,name,email,course_code,term\n"
        + "".join(f"{n},Student {n},{n}@uni.example,{course['code']},2026-fall\n" for n in students)
    )
    upload(admin_browser, path)
    notice = admin_browser.find("#roster-imported").text
    assert "2 students created" in notice and "2 enrollments" in notice
    roster_page = admin_browser.path
    admin_browser.find("#roster-imported a").click()
    wait_run(admin_browser, came_from=roster_page)
    outcomes = [r.get_attribute("data-outcome") for r in admin_browser.finds("#plan tbody tr")]
    assert outcomes == ["updated", "updated"], admin_browser.text()


def test_a_plan_shows_drift_and_changes_nothing_until_applied(
    admin_browser: Browser,
    dashboard: Dashboard,
    course: dict[str, str],
    students: list[str],
    admin_conn: openstack.connection.Connection,
) -> None:
    with dashboard.api() as api:
        (student,) = api.get("/api/v1/students", params={"q": students[0]}).json()["items"]
    project_id = student["keystone_project_id"]
    admin_conn.set_compute_quotas(project_id, cores=99)  # changed outside stackyard
    browser = admin_browser
    browser.open("/ui/reconciliation")
    browser.choose("course_id", value=course["id"])
    browser.find("#plan-button").click()
    wait_run(browser, came_from="/ui/reconciliation")
    assert browser.find("main h1").text.startswith("Plan: what would change")
    drifted = browser.find(f"#plan tbody tr:has(a[href='/ui/students/{student['id']}'])").text
    assert "compute.cores: 99 → 2" in drifted and "drift: compute.cores written 2, found 99" in drifted
    browser.shot("reconciliation-plan")
    assert admin_conn.get_compute_quotas(project_id).cores == 99  # a plan writes nothing
    plan_page = browser.path
    browser.find("#apply-plan").click()
    wait_run(browser, came_from=plan_page)
    assert browser.find("main h1").text.startswith("Applied")
    assert admin_conn.get_compute_quotas(project_id).cores == 2
