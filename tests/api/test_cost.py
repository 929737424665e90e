"""Prices through the API: price book versions, estimates checked against the prices, instance cost."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml

from support.api_client import error_of, field_of, instance_path
from support.api_instances import DEVCLOUD, CreatedInstance

pytestmark = pytest.mark.devcloud

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pricebook.yaml"
ESTIMATES = f"/api/v1/providers/{DEVCLOUD}/estimates"
HOURS_PER_MONTH = Decimal(730)
MICRO = Decimal("0.000001")
# Per unit only, so a flavor's price comes from its vCPUs, RAM and root disk.
UNIT_BOOK = {
    "currency": "EUR",
    "regions": {
        "*": {"units": {"vcpu_hour": "0.01", "ram_gib_hour": "0.005", "root_disk_gib_month": "0.04"}}
    },
}


def example_book() -> dict[str, object]:
    document = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(document, dict) and document["currency"] == "EUR", document
    return document


def put_book(client: httpx.Client, document: dict[str, object], comment: str) -> dict[str, object]:
    response = client.put("/api/v1/pricebook", json={**document, "comment": comment})
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def money(value: object) -> Decimal:
    assert isinstance(value, str), value
    return Decimal(value)


@pytest.fixture
def example(admin_client: httpx.Client) -> dict[str, object]:
    """The sample price book as the current version."""
    return put_book(admin_client, example_book(), "examples/pricebook.yaml")


def test_put_adds_a_version_and_keeps_the_old_ones(admin_client: httpx.Client) -> None:
    before = admin_client.get("/api/v1/pricebook/versions")
    assert before.status_code == 200, before.text
    versions = [v["version"] for v in before.json()["items"]]
    stored = put_book(admin_client, example_book(), "from the example")
    assert stored["currency"] == "EUR"
    assert stored["version"] == max(versions, default=0) + 1
    regions = stored["document"]["regions"]  # type: ignore[index]
    assert regions["RegionOne"]["flavors"]["m1.small"] == "0.02"
    after = admin_client.get("/api/v1/pricebook/versions").json()["items"]
    assert [v["version"] for v in after] == [stored["version"], *versions]  # newest first
    assert after[0]["comment"] == "from the example" and after[0]["created_by"] == "admin"
    current = admin_client.get("/api/v1/pricebook").json()
    assert current["version"] == stored["version"] and current["document"] == stored["document"]
    if versions:
        older = admin_client.get(f"/api/v1/pricebook/versions/{versions[0]}")
        assert older.status_code == 200 and older.json()["version"] == versions[0]
    error_of(admin_client.get("/api/v1/pricebook/versions/999999"), 404, "not_found")


def test_estimate_of_one_flavor_times_three(
    admin_client: httpx.Client, demo_client: httpx.Client, example: dict[str, object]
) -> None:
    price = Decimal(example_book()["regions"]["RegionOne"]["flavors"]["m1.small"])  # type: ignore[index]
    for client in (admin_client, demo_client):  # members may estimate too
        response = client.post(ESTIMATES, json={"type": "m1.small", "count": 3})
        assert response.status_code == 200, response.text
        estimate = response.json()
        assert estimate["currency"] == "EUR" and estimate["price_book_version"] == example["version"]
        assert money(estimate["hourly"]) == 3 * price == Decimal("0.06")
        assert money(estimate["monthly"]) == 3 * price * HOURS_PER_MONTH == Decimal("43.8")
        [item] = estimate["items"]
        assert (item["type"], item["count"], item["region"]) == ("m1.small", 3, "RegionOne")
        [line] = item["line_items"]
        assert line["unit"] == "flavor_hour"
        assert money(line["quantity"]) == 3 and money(line["unit_price"]) == price


def expected_line(unit: str, quantity: Decimal, price: Decimal) -> tuple[Decimal, Decimal]:
    """(hourly, monthly) of a line: monthly units spread over 730 hours, rounded to the micro-unit."""
    if unit.endswith("_month"):
        monthly = quantity * price
        hourly = monthly / HOURS_PER_MONTH
    else:
        hourly = quantity * price
        monthly = hourly * HOURS_PER_MONTH
    return hourly.quantize(MICRO), monthly.quantize(MICRO)


def test_estimate_of_several_instances_adds_up(
    admin_client: httpx.Client, example: dict[str, object]
) -> None:
    book = example_book()["regions"]["RegionOne"]  # type: ignore[index]
    body = {
        "instances": [
            {"type": "m1.tiny", "count": 2},
            {"type": "m1.small", "volume_gib": 10, "floating_ips": 1, "name": "db"},
        ]
    }
    response = admin_client.post(ESTIMATES, json=body)
    assert response.status_code == 200, response.text
    estimate = response.json()
    tiny, small = estimate["items"]
    assert money(tiny["hourly"]) == 2 * Decimal(book["flavors"]["m1.tiny"])
    units = {
        "flavor_hour": Decimal(book["flavors"]["m1.small"]),
        "volume_gib_month": Decimal(book["units"]["volume_gib_month"]),
        "floating_ip_hour": Decimal(book["units"]["floating_ip_hour"]),
    }
    assert [line["unit"] for line in small["line_items"]] == list(units)
    hourly_total = monthly_total = Decimal(0)
    for line in small["line_items"]:
        hourly, monthly = expected_line(line["unit"], money(line["quantity"]), units[line["unit"]])
        assert (money(line["hourly"]), money(line["monthly"])) == (hourly, monthly), line
        hourly_total += hourly
        monthly_total += monthly
    assert money(small["hourly"]) == hourly_total == Decimal("0.024685")
    assert money(small["monthly"]) == monthly_total == Decimal("18.02")
    assert money(estimate["hourly"]) == money(tiny["hourly"]) + money(small["hourly"])
    assert money(estimate["monthly"]) == money(tiny["monthly"]) + money(small["monthly"])


def test_estimate_by_units_for_a_flavor_without_a_flat_price(admin_client: httpx.Client) -> None:
    put_book(admin_client, UNIT_BOOK, "per unit only")
    response = admin_client.post(ESTIMATES, json={"type": "m1.medium"})  # 2 vCPU, 4 GiB, 40 GiB
    assert response.status_code == 200, response.text
    estimate = response.json()
    assert money(estimate["hourly"]) == Decimal("0.02") + Decimal("0.02") + Decimal("0.002192")
    assert money(estimate["monthly"]) == Decimal("14.6") + Decimal("14.6") + Decimal("1.6")
    assert [line["unit"] for line in estimate["items"][0]["line_items"]] == [
        "vcpu_hour",
        "ram_gib_hour",
        "root_disk_gib_month",
    ]


def test_estimate_errors_name_the_field(admin_client: httpx.Client, example: dict[str, object]) -> None:
    unknown = admin_client.post(ESTIMATES, json={"type": "m1.tinyy"})
    assert field_of(unknown) == "instances[0].type"
    assert "m1.tiny" in unknown.json()["error"]["message"]
    assert (
        field_of(admin_client.post(ESTIMATES, json={"type": "m1.tiny", "count": 0})) == "instances[0].count"
    )
    assert field_of(admin_client.post(ESTIMATES, json={"instances": []})) == "instances"
    assert (
        field_of(admin_client.post(ESTIMATES, json={"type": "m1.tiny", "colour": "red"}))
        == "instances[0].colour"
    )
    # A book that prices another region only.
    unknown_region = admin_client.post(ESTIMATES, json={"type": "m1.tiny", "region": "Atlantis"})
    assert field_of(unknown_region) == "instances[0].region"
    put_book(admin_client, {"currency": "EUR", "regions": {"Elsewhere": {"flavors": {"m1.tiny": "1"}}}}, "x")
    assert field_of(admin_client.post(ESTIMATES, json={"type": "m1.tiny"})) == "instances[0].region"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"currency": "eur", "regions": {"*": {"flavors": {"m1.tiny": "1"}}}}, "currency"),
        ({"currency": "EURO", "regions": {"*": {"flavors": {"m1.tiny": "1"}}}}, "currency"),
        ({"currency": "EUR", "regions": {}}, "regions"),
        ({"currency": "EUR", "regions": {"RegionOne": {}}}, "regions.RegionOne"),
        (
            {"currency": "EUR", "regions": {"RegionOne": {"flavors": {"m1.tiny": "-1"}}}},
            "regions.RegionOne.flavors.m1.tiny",
        ),
        (
            {"currency": "EUR", "regions": {"RegionOne": {"flavors": {"m1.tiny": "cheap"}}}},
            "regions.RegionOne.flavors.m1.tiny",
        ),
        (
            {"currency": "EUR", "regions": {"RegionOne": {"flavors": {"m1.tiny": True}}}},
            "regions.RegionOne.flavors.m1.tiny",
        ),
        (
            {"currency": "EUR", "regions": {"RegionOne": {"units": {"gpu_hour": "1"}}}},
            "regions.RegionOne.units.gpu_hour",
        ),
        ({"currency": "EUR", "regions": {"RegionOne": {"prices": {}}}}, "regions.RegionOne.prices"),
        (
            {"currency": "EUR", "regions": {"*": {"units": {"vcpu_hour": "1"}}}, "comment": "x" * 501},
            "comment",
        ),
        ({"regions": {"*": {"units": {"vcpu_hour": "1"}}}}, "currency"),
    ],
    ids=[
        "lower-case-currency",
        "long-currency",
        "no-regions",
        "empty-region",
        "negative",
        "not-a-number",
        "boolean",
        "unknown-unit",
        "unknown-key",
        "long-comment",
        "no-currency",
    ],
)
def test_bad_price_book_is_422_and_changes_nothing(
    admin_client: httpx.Client, example: dict[str, object], document: dict[str, object], field: str
) -> None:
    response = admin_client.put("/api/v1/pricebook", json=document)
    assert field_of(response) == field
    current = admin_client.get("/api/v1/pricebook").json()
    assert current["version"] == example["version"]
    versions = admin_client.get("/api/v1/pricebook/versions").json()["items"]
    assert versions[0]["version"] == example["version"]


def test_instance_cost_accrues_at_the_hourly_price(
    admin_client: httpx.Client, admin_instance: CreatedInstance, example: dict[str, object]
) -> None:
    response = admin_client.get(f"{instance_path(DEVCLOUD, admin_instance.id)}/cost")
    assert response.status_code == 200, response.text
    cost = response.json()
    price = Decimal(example_book()["regions"]["RegionOne"]["flavors"]["m1.tiny"])  # type: ignore[index]
    assert cost["instance_id"] == admin_instance.id
    assert cost["currency"] == "EUR" and cost["price_book_version"] == example["version"]
    assert money(cost["hourly"]) == price
    assert money(cost["hours"]) >= 0 and money(cost["accrued"]) >= 0
    assert money(cost["accrued"]) <= (money(cost["hours"]) * price).quantize(MICRO) + MICRO
    assert money(cost["monthly_projection"]) == money(cost["hourly"]) * HOURS_PER_MONTH == Decimal("3.65")


def test_project_cost_report(
    admin_client: httpx.Client,
    demo_client: httpx.Client,
    admin_instance: CreatedInstance,
    admin_project_id: str,
    example: dict[str, object],
) -> None:
    path = f"/api/v1/providers/{DEVCLOUD}/projects/{admin_project_id}/cost"
    response = admin_client.get(path)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["project_id"] == admin_project_id and report["currency"] == "EUR"
    priced = [money(line["cost"]) for line in report["lines"] if line["cost"] is not None]
    assert money(report["total"]) == sum(priced, Decimal(0))
    # A member cannot read another project's report.
    error_of(demo_client.get(path), 404, "not_found")
    assert field_of(admin_client.get(path, params={"since": "2030-01-02", "until": "2030-01-01"})) == "until"
    # Nova's usage API fails on years before 1000; the API refuses anything before 1970.
    assert field_of(admin_client.get(path, params={"since": "0999-01-01"})) == "since"
    assert field_of(admin_client.get(path, params={"since": "1969-12-31"})) == "since"


def test_nul_in_the_comment_is_422_not_a_server_error(
    admin_client: httpx.Client, example: dict[str, object]
) -> None:
    """PostgreSQL text cannot hold a NUL character: the API must answer 422 before the insert fails."""
    response = admin_client.put("/api/v1/pricebook", json={**UNIT_BOOK, "comment": "nul \u0000 inside"})
    assert field_of(response) == "comment"
    assert admin_client.get("/api/v1/pricebook").json()["version"] == example["version"]
