"""Instances in the browser: create with a live estimate, detail with cost, stop and start, list, scope."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openstack.connection
import pytest

from support.browser import Browser

pytestmark = pytest.mark.devcloud

FLAVOR = "m1.tiny"  # 0.005 EUR an hour in examples/pricebook.yaml


@pytest.fixture(scope="module")
def created(
    admin_browser: Browser, admin_conn: openstack.connection.Connection, image_id: str, network_id: str
) -> Iterator[tuple[str, str]]:
    """An instance made through the create form as the admin: (name, id); deleted afterwards."""
    browser = admin_browser
    name = f"webt-{uuid.uuid4().hex[:6]}"
    browser.open("/ui/instances/new")
    browser.fill("name", name)
    browser.choose("flavor", value=FLAVOR)
    browser.wait_until("the estimate of one instance", lambda: "0.005 EUR" in browser.find("#estimate").text)
    browser.fill("count", "3")
    browser.wait_until("the estimate of three", lambda: "0.015 EUR" in browser.find("#estimate").text)
    assert "10.95 EUR" in browser.find("#estimate-total").text  # 730 h a month
    browser.fill("count", "1")
    browser.wait_until("the estimate of one again", lambda: "0.005 EUR" in browser.find("#estimate").text)
    browser.choose("image", value=image_id)
    browser.fill("networks", network_id)
    browser.shot("instance-create")
    browser.find("#create-form button[type=submit]").click()
    browser.wait_until("the detail page", lambda: browser.path.startswith("/ui/instances/devcloud/"))
    instance_id = browser.path.split("/")[4].split("?")[0]
    try:
        yield name, instance_id
    finally:
        admin_conn.compute.delete_server(instance_id, ignore_missing=True)


def _status(browser: Browser) -> str:
    # One script call: htmx replaces the element every few seconds.
    return str(browser.driver.execute_script("return document.getElementById('status').dataset.status"))


def test_the_create_form_names_each_bad_field(admin_browser: Browser) -> None:
    browser = admin_browser
    browser.open("/ui/instances/new")
    browser.fill("name", "-bad name")
    browser.fill("count", "99")
    browser.find("#create-form button[type=submit]").click()
    browser.wait_for("#name-error")
    assert browser.find("#name-error").text.startswith("name:")
    assert browser.find("#flavor-error").text == "flavor: choose a flavor"
    assert browser.find("#image-error").text == "image: choose an image"
    assert browser.find("#count-error").text == "count: a whole number from 1 to 10"


def test_a_created_instance_shows_addresses_flavor_image_and_cost(
    admin_browser: Browser, created: tuple[str, str]
) -> None:
    name, _ = created
    browser = admin_browser
    assert browser.find("main h1").text == name
    browser.wait_until("ACTIVE", lambda: _status(browser) == "ACTIVE", timeout=180)
    browser.driver.refresh()
    browser.wait_for("#cost")
    assert "0.005 EUR" in browser.find("#cost").text and "3.65 EUR" in browser.find("#cost").text
    assert FLAVOR in browser.text() and "devcloud-raw" in browser.text()
    internal = browser.find("#internal-addresses").text
    assert "on private" in internal
    browser.shot("instance-detail")


def test_stop_and_start_ask_first_and_the_status_follows(
    admin_browser: Browser, created: tuple[str, str]
) -> None:
    _, instance_id = created
    browser = admin_browser
    browser.open(f"/ui/instances/devcloud/{instance_id}")
    browser.wait_until("ACTIVE", lambda: _status(browser) == "ACTIVE", timeout=180)
    for action, settled in (("stop", "SHUTOFF"), ("start", "ACTIVE")):
        browser.find(f".actions a[href$='action={action}']").click()
        browser.wait_for("#confirm")
        assert browser.find("main h1").text.startswith(action.capitalize())
        if action == "stop":
            browser.shot("instance-confirm-stop")
        browser.find("#confirm").click()
        browser.wait_until(
            f"{action} requested", lambda a=action: f"{a.capitalize()} requested." in browser.text()
        )
        # The status updates in place (htmx polls it), without a reload.
        browser.wait_until(settled, lambda s=settled: _status(browser) == s, timeout=180)


def test_the_list_filters_sorts_and_links_to_the_detail(
    admin_browser: Browser, created: tuple[str, str]
) -> None:
    name, instance_id = created
    browser = admin_browser
    browser.open("/ui/instances")
    browser.wait_for("#instances")
    browser.fill("name-filter", f"^{name}$")
    browser.find("form.filters button").click()
    browser.wait_until("the filtered table", lambda: len(browser.finds("#instances tbody tr[data-id]")) == 1)
    assert browser.find("#instances tbody tr").get_attribute("data-id") == instance_id
    browser.open("/ui/instances?provider=devcloud&sort=name&order=asc&limit=100")
    names = [
        row.find_element("css selector", "td a").text for row in browser.finds("#instances tbody tr[data-id]")
    ]
    # Nova's database sorts without case (MySQL's general_ci collation compares upper-cased letters).
    assert names == sorted(names, key=str.upper) and name in names
    assert browser.find("th[aria-sort='ascending']").text.startswith("Name")
    browser.shot("instances")
    # The cloud sorts, so the order holds across pages too: two rows a page, following "Next page".
    browser.open("/ui/instances?provider=devcloud&sort=name&order=desc&limit=2")
    paged: list[str] = []
    for _ in range(3):
        browser.wait_for("#instances")
        paged += [
            row.find_element("css selector", "td a").text
            for row in browser.finds("#instances tbody tr[data-id]")
        ]
        following = browser.finds("a[rel='next']")
        if not following:
            break
        browser.open(str(following[0].get_attribute("href")).removeprefix(browser.base_url))
    assert len(paged) == min(6, len(names)) and paged == sorted(paged, key=str.upper, reverse=True)


def test_a_member_sees_only_their_project(member_browser: Browser, created: tuple[str, str]) -> None:
    name, instance_id = created
    browser = member_browser
    browser.open("/ui/instances?limit=100")
    browser.wait_for("#instances")
    assert instance_id not in {row.get_attribute("data-id") for row in browser.finds("#instances tbody tr")}
    browser.open(f"/ui/instances/devcloud/{instance_id}")
    browser.wait_for("main h1")
    assert browser.find("main h1").text == "Not found" and name not in browser.text()


def test_delete_asks_first_then_the_instance_goes(admin_browser: Browser, created: tuple[str, str]) -> None:
    name, instance_id = created
    browser = admin_browser
    browser.open(f"/ui/instances/devcloud/{instance_id}")
    browser.wait_for(".actions")
    browser.find(".actions a[href$='action=delete']").click()
    browser.wait_for("#confirm")
    assert "removes the instance and its local disk for good" in browser.text()
    browser.find("#confirm").click()
    browser.wait_until("the delete notice", lambda: "Delete requested." in browser.text())

    def gone() -> bool:
        browser.open(f"/ui/instances?provider=devcloud&name=^{name}$")
        return "No instances match." in browser.find("#instances").text

    browser.wait_until("the instance to disappear", gone, timeout=180, poll=2)
