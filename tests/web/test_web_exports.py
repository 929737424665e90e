"""Exports in the browser: start one, watch its progress reach 100% without reloading, cancel one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openstack.connection
import pytest

from support.browser import Browser

pytestmark = pytest.mark.devcloud

EXPORT_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def server(admin_conn: openstack.connection.Connection, image_id: str, network_id: str) -> Iterator[str]:
    """An ACTIVE instance of the admin project to export (made with the SDK, deleted afterwards)."""
    flavor = admin_conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    created = admin_conn.compute.create_server(
        name=f"webt-exp-{uuid.uuid4().hex[:6]}",
        flavor_id=flavor.id,
        image_id=image_id,
        networks=[{"uuid": network_id}],
    )
    try:
        admin_conn.compute.wait_for_server(created, status="ACTIVE", wait=300)
        yield str(created.id)
    finally:
        admin_conn.compute.delete_server(created.id, ignore_missing=True)


@pytest.fixture(scope="module")
def container(admin_conn: openstack.connection.Connection) -> Iterator[str]:
    name = f"webexp-{uuid.uuid4().hex[:6]}"
    admin_conn.object_store.create_container(name)
    yield name
    for item in list(admin_conn.object_store.objects(name)):
        admin_conn.object_store.delete_object(item, container=name)
    admin_conn.object_store.delete_container(name)


def start(browser: Browser, server: str, target: str, *, compression: str, bandwidth: str = "") -> str:
    """Fill in and send the export form; returns the job id the page went to."""
    browser.open("/ui/exports")
    browser.choose("instance", value=server)
    browser.fill("target", target)
    browser.choose("compression", value=compression)
    browser.fill("bandwidth", bandwidth)
    browser.find("#export-form button[type=submit]").click()
    browser.wait_until("the job page", lambda: browser.path.startswith("/ui/jobs/"))
    return browser.path.split("/")[3].split("?")[0]


def reading(browser: Browser, job_id: str) -> dict[str, str]:
    """The progress block as shown now, read in one script call (htmx replaces it every second)."""
    found = browser.driver.execute_script(
        "const e = document.getElementById(arguments[0]); if (!e) return null;"
        "return {state: e.dataset.state, percent: e.dataset.percent,"
        " phase: e.querySelector('.phase').textContent.trim(),"
        " figures: e.querySelector('.figures').innerText};",
        f"progress-{job_id}",
    )
    assert isinstance(found, dict), f"no progress block for job {job_id}"
    return {k: str(v) for k, v in found.items()}


def progress(browser: Browser, job_id: str) -> tuple[str, int]:
    shown = reading(browser, job_id)
    return shown["state"], int(shown["percent"] or 0)


def test_the_export_form_names_bad_fields(admin_browser: Browser) -> None:
    admin_browser.open("/ui/exports")
    admin_browser.fill("target", "")
    admin_browser.fill("bandwidth", "fast")
    admin_browser.find("#export-form button[type=submit]").click()
    admin_browser.wait_for("#instance-error")
    assert admin_browser.find("#instance-error").text == "instance: choose an instance"
    assert admin_browser.find("#bandwidth-error").text == "bandwidth: a number of KiB per second"


def test_an_export_shows_live_progress_until_100_percent(
    admin_browser: Browser, member_browser: Browser, server: str, container: str
) -> None:
    browser = admin_browser
    job_id = start(browser, server, f"swift://{container}/web/", compression="zstd")
    seen: set[tuple[str, int]] = set()
    marker = browser.driver.execute_script("return window.performance.timeOrigin")

    def done() -> bool:
        state, percent = progress(browser, job_id)
        seen.add((state, percent))
        return state in ("succeeded", "failed", "cancelled")

    browser.wait_until("the export to finish", done, timeout=EXPORT_TIMEOUT, poll=0.3)
    # The bar moved in place: the page itself was never reloaded.
    assert browser.driver.execute_script("return window.performance.timeOrigin") == marker
    assert progress(browser, job_id) == ("succeeded", 100), browser.text()
    assert any(state != "succeeded" for state, _ in seen), seen  # it was seen before it finished
    assert "100%" in browser.find(f"#progress-{job_id} .pct").text
    assert f"swift://{container}/web/" in browser.find("#export").text
    assert not browser.finds("#cancel")  # nothing left to cancel
    browser.shot("export-done")
    browser.open("/ui/exports")
    assert job_id in {row.get_attribute("data-id") for row in browser.finds("#exports tbody tr")}
    browser.shot("exports")
    # A member sees neither the admin's job nor its export.
    member_browser.open(f"/ui/jobs/{job_id}")
    member_browser.wait_for("main h1")
    assert member_browser.find("main h1").text == "Not found"
    member_browser.open("/ui/exports")
    assert job_id not in {row.get_attribute("data-id") for row in member_browser.finds("#exports tbody tr")}


def test_a_running_export_can_be_cancelled(admin_browser: Browser, server: str, container: str) -> None:
    browser = admin_browser
    # 96 KiB/s: the 4 MiB image takes about 40 s, slow enough to be caught while it transfers (much
    # slower and Swift's proxy times the segment upload out, and the job retries).
    job_id = start(browser, server, f"swift://{container}/slow/", compression="none", bandwidth="96")

    def moving() -> bool:
        shown = reading(browser, job_id)
        return shown["state"] == "running" and shown["phase"] == "transferring" and "ETA" in shown["figures"]

    browser.wait_until("the transfer with a rate and an ETA", moving, timeout=EXPORT_TIMEOUT, poll=0.3)
    state, percent = progress(browser, job_id)
    assert state == "running" and 0 < percent < 100, (state, percent)
    browser.shot("export-progress")
    browser.find("#cancel").click()
    browser.driver.switch_to.alert.accept()
    browser.wait_until("the cancel notice", lambda: "Cancel requested" in browser.text())
    browser.wait_until(
        "the job to be cancelled", lambda: progress(browser, job_id)[0] == "cancelled", timeout=EXPORT_TIMEOUT
    )


def test_a_retention_plan_keeps_the_newest_and_names_why(admin_browser: Browser, server: str) -> None:
    browser = admin_browser
    browser.open("/ui/exports")
    browser.find("#retention-link").click()
    browser.wait_for("#retention-form")
    browser.fill("gfs", "7x")
    browser.find("#plan-retention").click()
    assert browser.wait_for("#gfs-error").text.startswith("gfs: expected counts such as 7d,4w,12m")
    browser.fill("instance", server)
    browser.fill("keep_last", "1")
    browser.fill("gfs", "")
    browser.find("#plan-retention").click()
    browser.wait_for("#retention-plan")
    rows = browser.finds("#retention-plan tbody tr[data-id]")
    # This module's exports of the server: the one that succeeded is the newest finished one, kept.
    assert [r.get_attribute("data-keep") for r in rows][:1] == ["true"], browser.text()
    assert "keep (last 1)" in rows[0].text
    browser.shot("export-retention-plan")
