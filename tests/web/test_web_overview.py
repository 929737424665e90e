"""The overview and the charts page in the browser, on a laptop and on a phone-sized screen."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import openstack.connection
import pytest

from stackyard.devcloud.access import Credentials
from support.browser import PHONE, Browser, Dashboard, chrome

pytestmark = pytest.mark.devcloud


@pytest.fixture(scope="module")
def enrolled(dashboard: Dashboard, admin_conn: openstack.connection.Connection) -> Iterator[dict[str, str]]:
    """A course with one enrolled student, made over the REST API (so there are quota events)."""
    tag = uuid.uuid4().hex[:6]
    today = date.today()
    with dashboard.api() as api:
        saved = api.put(
            f"/api/v1/profiles/webov{tag}", json={"values": {"compute": {"cores": 4, "instances": 2}}}
        )
        assert saved.status_code == 200, saved.text
        course = api.post(
            "/api/v1/courses",
            json={
                "code": f"OV{tag}",
                "term": "2026-fall",
                "name": "Overview course",
                "start_date": (today - timedelta(days=1)).isoformat(),
                "end_date": (today + timedelta(days=30)).isoformat(),
                "profile": f"webov{tag}",
            },
        )
        assert course.status_code == 201, course.text
        student = api.post(
            "/api/v1/students",
            json={"student_number": f"ov{tag}", "name": "Grace Hopper", "email": f"ov{tag}@uni.example"},
        )
        assert student.status_code == 201, student.text
        body = student.json()["student"]
        try:
            enrolled = api.post(
                f"/api/v1/students/{body['id']}/enroll", json={"course_id": course.json()["id"]}
            )
            assert enrolled.status_code == 201, enrolled.text
            yield {"course": f"OV{tag}", "student": body["id"]}
        finally:
            admin_conn.identity.delete_project(body["keystone_project_id"], ignore_missing=True)


def test_the_overview_shows_instances_by_status_quota_bars_jobs_and_quota_events(
    admin_browser: Browser, enrolled: dict[str, str]
) -> None:
    browser = admin_browser
    browser.open("/ui/")
    browser.wait_for("section.region")
    region = browser.find("section.region")
    assert "devcloud · RegionOne" in region.text
    assert int(region.find_element("css selector", ".total").text.rstrip("+")) >= 0
    assert region.find_elements("css selector", "svg[role=img] title")
    bars = browser.finds("#quota-bars .bar-row")
    assert [b.text.split("\n")[0] for b in bars][:3] == ["instances", "cores", "ram (MiB)"]
    assert browser.find("#running-jobs").text
    events = browser.find("#audit").text
    assert "enroll" in events and "register" in events
    browser.shot("overview")


def test_the_overview_fits_a_phone_screen(dashboard: Dashboard, demo_credentials: Credentials) -> None:
    browser = Browser(chrome(PHONE), dashboard.base_url)
    try:
        browser.sign_in(demo_credentials.username, demo_credentials.password, demo_credentials.project_name)
        browser.open("/ui/")
        browser.wait_for("section.region")
        assert browser.driver.execute_script("return window.innerWidth") == PHONE[0]
        # Nothing wider than the screen: no sideways scrolling of the page itself.
        overflow = browser.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, overflow
        assert "in your project" in browser.find("section.region").text  # a member sees their project
        browser.shot("overview-phone-member")
        # Keyboard: the first Tab lands on the skip link, which jumps to the content.
        browser.find("body").send_keys("\ue004")
        assert browser.driver.switch_to.active_element.text == "Skip to content"
        # The member's other pages fit too (wide tables scroll inside their own box, not the page).
        for path in ("/ui/instances", "/ui/me", "/ui/exports", "/ui/instances/new", "/ui/charts"):
            browser.open(path)
            browser.wait_for("main h1")
            overflow = browser.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, (path, overflow)
        browser.open("/ui/instances")
        browser.shot("instances-phone-member")
    finally:
        browser.quit()


def test_charts_show_quota_per_course_cost_over_time_and_export_throughput(
    admin_browser: Browser, enrolled: dict[str, str], admin_conn: openstack.connection.Connection
) -> None:
    browser = admin_browser
    project_id = admin_conn.current_project_id
    browser.open(f"/ui/charts?project={project_id}")
    browser.wait_for("#cost-chart")
    course_chart = browser.find("#course-chart svg desc").get_attribute("textContent")
    assert f"{enrolled['course']} 2026-fall: cores granted 4, cores in use 0" in course_chart
    cost = browser.find("#cost-chart svg desc").get_attribute("textContent")
    assert cost.startswith(project_id[:8] + ":") and cost.count("EUR") == 7
    assert browser.find("#throughput-chart").text  # a chart, or the note that no export finished yet
    browser.shot("charts")
