"""Students, courses and quotas in the browser: register, enroll and watch the quota, drop, course pages,
and a student (member) who sees their own courses, quota and instances but nobody else's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta

import openstack.connection
import pytest

from stackyard.devcloud.access import Credentials
from support.browser import Browser, Dashboard, chrome
from support.clouds import sdk_connection

pytestmark = pytest.mark.devcloud

LAB = {"compute": {"instances": 2, "cores": 2, "ram": 1024}}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def course(dashboard: Dashboard) -> dict[str, str]:
    """A running course granting the LAB profile, made over the REST API."""
    profile = unique("weblab")
    today = date.today()
    with dashboard.api() as api:
        saved = api.put(f"/api/v1/profiles/{profile}", json={"values": LAB, "description": "web tests"})
        assert saved.status_code == 200, saved.text
        created = api.post(
            "/api/v1/courses",
            json={
                "code": unique("WEB"),
                "term": "2026-fall",
                "name": "Clouds in the browser",
                "start_date": (today - timedelta(days=5)).isoformat(),
                "end_date": (today + timedelta(days=60)).isoformat(),
                "profile": profile,
            },
        )
    assert created.status_code == 201, created.text
    body = created.json()
    return {"id": body["id"], "code": body["code"], "profile": profile}


@pytest.fixture(scope="module")
def projects(admin_conn: openstack.connection.Connection) -> Iterator[list[str]]:
    """Student projects made by these tests; deleted at the end."""
    made: list[str] = []
    yield made
    for project_id in made:
        admin_conn.identity.delete_project(project_id, ignore_missing=True)


def register(browser: Browser, number: str) -> str:
    """Register a student through the form; returns the student's page path."""
    browser.open("/ui/students")
    browser.fill("student_number", number)
    browser.fill("name", f"Ada {number}")
    browser.fill("email", f"{number}@uni.example")
    browser.find("#register-form button[type=submit]").click()
    browser.wait_until("the student's page", lambda: browser.path.startswith("/ui/students/"))
    browser.wait_for("#enrollments")
    assert "Student registered" in browser.text()
    return browser.path.split("?")[0]


def cell(browser: Browser, resource: str, column: str) -> str:
    return str(browser.find(f"tr[data-resource='{resource}'] td.{column}").text)


@pytest.fixture(scope="module")
def student(admin_browser: Browser, projects: list[str]) -> dict[str, str]:
    number = unique("w")
    path = register(admin_browser, number)
    project_id = admin_browser.find("dl .mono").text
    assert len(project_id) == 32, project_id
    projects.append(project_id)
    return {"path": path, "id": path.rsplit("/", 1)[1], "number": number, "project_id": project_id}


@pytest.fixture(scope="module")
def other_student(admin_browser: Browser, projects: list[str]) -> dict[str, str]:
    path = register(admin_browser, unique("o"))
    projects.append(admin_browser.find("dl .mono").text)
    return {"path": path, "id": path.rsplit("/", 1)[1]}


def test_registering_names_each_missing_field(admin_browser: Browser) -> None:
    admin_browser.open("/ui/students")
    admin_browser.find("#register-form button[type=submit]").click()
    admin_browser.wait_for("#student_number-error")
    assert admin_browser.find("#student_number-error").text == "student_number: required"
    assert admin_browser.find("#email-error").text == "email: required"


def test_enrolling_raises_the_quota_in_the_cloud(
    admin_browser: Browser, student: dict[str, str], course: dict[str, str]
) -> None:
    browser = admin_browser
    browser.open(student["path"])
    browser.wait_for("#enrollments")
    assert cell(browser, "compute.instances", "limit") == "0"  # the baseline grants no compute
    browser.choose("course_id", value=course["id"])
    browser.find("#enroll-form button[type=submit]").click()
    browser.wait_until("the enrollment", lambda: "Enrolled;" in browser.text())
    assert course["code"] in browser.find("#enrollments").text
    # Desired, written and the cloud's own limit (read from Nova now) all moved to the course's grant.
    assert cell(browser, "compute.instances", "desired") == "2"
    assert cell(browser, "compute.instances", "applied") == "2"
    assert cell(browser, "compute.instances", "limit") == "2"
    assert cell(browser, "compute.ram", "limit") == "1024"
    assert browser.find("#sync").text.startswith("in sync")
    browser.shot("student-detail")


def test_students_and_courses_can_be_searched_and_opened(
    admin_browser: Browser, student: dict[str, str], course: dict[str, str]
) -> None:
    browser = admin_browser
    browser.open(f"/ui/students?q={student['number']}")
    rows = browser.finds("#students tbody tr")
    assert len(rows) == 1 and student["number"] in rows[0].text
    browser.shot("students")
    browser.open(f"/ui/courses?q={course['code']}")
    browser.find("#courses tbody a").click()
    browser.wait_for("#course-students")
    assert course["profile"] in browser.text() and "instances: 2" in browser.text()
    assert student["number"] in browser.find("#course-students").text
    browser.shot("course-detail")


@pytest.fixture(scope="module")
def student_login(
    admin_conn: openstack.connection.Connection, student: dict[str, str]
) -> Iterator[tuple[str, str, str]]:
    """A Keystone user with the member role on the student's project: (username, password, project)."""
    name, password = unique("webuser"), uuid.uuid4().hex
    project = admin_conn.identity.get_project(student["project_id"])
    user = admin_conn.identity.create_user(name=name, password=password, domain_id="default")
    try:
        role = admin_conn.identity.find_role("member", ignore_missing=False)
        admin_conn.identity.assign_project_role_to_user(project, user, role)
        yield name, password, str(project.name)
    finally:
        admin_conn.identity.delete_user(user, ignore_missing=True)


def test_a_student_sees_their_courses_quota_and_instances_and_nobody_elses(
    dashboard: Dashboard,
    student: dict[str, str],
    other_student: dict[str, str],
    course: dict[str, str],
    student_login: tuple[str, str, str],
) -> None:
    browser = Browser(chrome(), dashboard.base_url)
    try:
        browser.sign_in(*student_login)
        assert "Students" not in browser.find("header nav").text  # members have no admin pages
        browser.open("/ui/me")
        browser.wait_for("#my-courses")
        assert course["code"] in browser.find("#my-courses").text
        assert cell(browser, "compute.instances", "limit") == "2"
        assert browser.find("#my-instances").text
        browser.shot("member-me")
        assert "No instances." in browser.find("#my-instances").text  # their project has none
        browser.open(student["path"])
        browser.wait_for("#enrollments")
        assert student["number"] in browser.find("main h1").text
        assert not browser.finds("#enroll-form")  # members cannot enroll themselves
        browser.open(other_student["path"])
        browser.wait_for("main h1")
        assert browser.find("main h1").text == "Not found"
        assert other_student["id"] in browser.text()  # the id asked for, nothing of the record
        browser.open("/ui/students")
        assert browser.find("main h1").text == "Not allowed"
    finally:
        browser.quit()


def test_a_drop_below_usage_leaves_a_pending_cut_with_its_reason(
    admin_browser: Browser,
    student: dict[str, str],
    course: dict[str, str],
    student_login: tuple[str, str, str],
    admin_credentials: Credentials,
    admin_conn: openstack.connection.Connection,
    image_id: str,
    network_id: str,
) -> None:
    username, password, project = student_login
    own = sdk_connection(
        replace(admin_credentials, username=username, password=password, project_name=project)
    )
    flavor = own.compute.find_flavor("m1.tiny", ignore_missing=False)
    server = own.compute.create_server(
        name=unique("webt-cut-"), flavor_id=flavor.id, image_id=image_id, networks=[{"uuid": network_id}]
    )
    try:
        own.compute.wait_for_server(server, status="ACTIVE", wait=300)
        browser = admin_browser
        browser.open(student["path"])
        browser.wait_for("#enrollments")
        assert cell(browser, "compute.instances", "in-use") == "1"
        # The drop form asks first (a JavaScript confirm); accept it.
        browser.find(f"#enrollments li[data-course='{course['id']}'] button").click()
        browser.driver.switch_to.alert.accept()
        browser.wait_until("the drop", lambda: "Dropped;" in browser.text())
        item = browser.find(f"#enrollments li[data-course='{course['id']}']")
        assert item.get_attribute("data-status") == "dropped"
        # The course granted the only compute; the instance in use holds the limit at 1 until it goes.
        assert cell(browser, "compute.instances", "desired") == "0"
        assert cell(browser, "compute.instances", "limit") == "1"
        pending = browser.find("tr[data-resource='compute.instances'] .pending").text
        assert pending.startswith("Pending cut: held at 1: 1 in use, 0 wanted (since ")
        assert (
            "reduction pending" in browser.find("#pending").text
            or "reductions pending" in browser.find("#pending").text
        )
        browser.shot("student-pending-cut")
    finally:
        admin_conn.compute.delete_server(server.id, ignore_missing=True)
        own.close()


def test_a_taken_student_number_is_named_on_the_form(admin_browser: Browser, student: dict[str, str]) -> None:
    browser = admin_browser
    browser.open("/ui/students")
    browser.fill("student_number", student["number"])
    browser.fill("name", "Someone Else")
    browser.fill("email", "someone@uni.example")
    browser.find("#register-form button[type=submit]").click()
    error = browser.wait_for("#student_number-error").text
    assert error == f"student_number: student number {student['number']} already exists"
