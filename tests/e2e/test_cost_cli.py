"""The price book and cost CLI as a user runs it (a subprocess, its own data dir), against the devcloud."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from stackyard.devcloud.access import clouds_yaml
from stackyard.devcloud.launcher import Devcloud

pytestmark = pytest.mark.devcloud

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pricebook.yaml"


@pytest.fixture(scope="module")
def cli_env(devcloud: Devcloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("cost-cli")
    (directory / "clouds.yaml").write_text(clouds_yaml(devcloud))
    (directory / "stackyard.yaml").write_text("retry: {attempts: 5, initial: 0.5, cap: 5}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKYARD_"))}
    env["OS_CLIENT_CONFIG_FILE"] = str(directory / "clouds.yaml")
    env["STACKYARD_CONFIG"] = str(directory / "stackyard.yaml")
    return env


def sy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def fresh_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A data dir of its own: an empty SQLite database, migrated on first use."""
    return {**cli_env, "STACKYARD_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture(scope="module")
def priced_env(cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A data dir holding the sample price book as version 1."""
    env = {**cli_env, "STACKYARD_DATA_DIR": str(tmp_path_factory.mktemp("priced") / "data")}
    imported = sy(env, "pricebook", "import", str(SAMPLE))
    assert imported.returncode == 0, imported.stderr
    return env


def test_nothing_imported_yet_is_said_before_any_cloud_call(fresh_env: dict[str, str]) -> None:
    for args in (
        ("cost", "estimate", "--flavor", "m1.small", "--cloud", "no-such-cloud"),
        ("cost", "report", "--project", "admin", "--since", "2026-01-01", "--cloud", "no-such-cloud"),
        ("pricebook", "show"),
    ):
        result = sy(fresh_env, *args)
        assert result.returncode == 1
        assert "none has been imported yet" in result.stderr
    versions = sy(fresh_env, "pricebook", "versions", "-f", "json")
    assert versions.returncode == 0 and json.loads(versions.stdout) == []


def test_import_versions_show_and_bad_books_store_nothing(fresh_env: dict[str, str], tmp_path: Path) -> None:
    imported = sy(fresh_env, "pricebook", "import", str(SAMPLE), "--comment", "sample prices", "-f", "json")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["version"], summary["currency"], summary["comment"]) == (1, "EUR", "sample prices")
    assert summary["regions"] == ["*", "RegionOne"]

    versions = json.loads(sy(fresh_env, "pricebook", "versions", "-f", "json").stdout)
    assert [(v["version"], v["currency"], v["comment"]) for v in versions] == [(1, "EUR", "sample prices")]

    # A bad book names the field, exits 2 and stores nothing.
    bad = tmp_path / "bad.yaml"
    bad.write_text("currency: EUR\nregions:\n  RegionOne:\n    units: {vcpu_hour: -0.01}\n")
    rejected = sy(fresh_env, "pricebook", "import", str(bad))
    assert rejected.returncode == 2
    assert "regions.RegionOne.units.vcpu_hour" in rejected.stderr and "negative" in rejected.stderr
    assert len(rejected.stderr.strip().splitlines()) == 1
    unknown_unit = tmp_path / "unit.yaml"
    unknown_unit.write_text('{"currency": "EUR", "regions": {"*": {"units": {"gpu_hour": 1}}}}')
    rejected_unit = sy(fresh_env, "pricebook", "import", str(unknown_unit))
    assert rejected_unit.returncode == 2 and "regions.*.units.gpu_hour" in rejected_unit.stderr
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("currency: [EUR\n")
    assert sy(fresh_env, "pricebook", "import", str(not_yaml)).returncode == 2
    after = json.loads(sy(fresh_env, "pricebook", "versions", "-f", "json").stdout)
    assert [v["version"] for v in after] == [1]

    shown = json.loads(sy(fresh_env, "pricebook", "show", "-f", "json").stdout)
    assert shown["version"] == 1 and shown["regions"]["RegionOne"]["flavors"]["m1.small"] == "0.02"
    assert sy(fresh_env, "pricebook", "show", "--version", "7").returncode == 1


def test_estimate_prices_the_cloud_flavor_with_the_sample_book(priced_env: dict[str, str]) -> None:
    # m1.small has a flat price of 0.02 EUR an hour in RegionOne: 3 of them, 0.06 an hour, 43.80 a month.
    estimated = sy(
        priced_env,
        "cost",
        "estimate",
        "--flavor",
        "m1.small",
        "--count",
        "3",
        "--cloud",
        "devcloud",
        "-f",
        "json",
    )
    assert estimated.returncode == 0, estimated.stderr
    estimate = json.loads(estimated.stdout)
    assert (estimate["currency"], estimate["region"], estimate["count"]) == ("EUR", "RegionOne", 3)
    assert Decimal(estimate["hourly"]) == Decimal("0.06")
    assert Decimal(estimate["monthly"]) == Decimal("43.8")
    [item] = estimate["line_items"]
    assert (item["unit"], Decimal(item["quantity"]), Decimal(item["unit_price"])) == (
        "flavor_hour",
        3,
        Decimal("0.02"),
    )

    # Extras add line items: 10 GiB of volume (0.05 a GiB-month) and a floating IP (0.004 an hour) each.
    extras = json.loads(
        sy(
            priced_env,
            "cost",
            "estimate",
            "--flavor",
            "m1.small",
            "--count",
            "2",
            "--volume-gib",
            "10",
            "--floating-ips",
            "1",
            "--cloud",
            "devcloud",
            "-f",
            "json",
        ).stdout
    )
    assert Decimal(extras["monthly"]) == Decimal("0.04") * 730 + Decimal("1.0") + Decimal("0.008") * 730

    typo = sy(priced_env, "cost", "estimate", "--flavor", "m1.smal", "--cloud", "devcloud")
    assert typo.returncode == 2 and "'m1.small'" in typo.stderr


def test_report_of_a_project_since_yesterday(priced_env: dict[str, str]) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    reported = sy(
        priced_env,
        "cost",
        "report",
        "--project",
        "admin",
        "--since",
        yesterday,
        "--cloud",
        "devcloud",
        "-f",
        "json",
    )
    assert reported.returncode == 0, reported.stderr
    report = json.loads(reported.stdout)
    assert (report["project"], report["currency"], report["price_book_version"]) == ("admin", "EUR", 1)
    assert report["region"] == "RegionOne"
    assert datetime.fromisoformat(report["start"]) == datetime.fromisoformat(f"{yesterday}T00:00:00+00:00")
    assert Decimal(report["total"]) == sum(
        (Decimal(s["cost"]) for s in report["servers"] if s["cost"] is not None), Decimal(0)
    )
    for server in report["servers"]:
        assert Decimal(server["hours"]) >= 0 and server["instance_id"]

    table = sy(
        priced_env, "cost", "report", "--project", "admin", "--since", yesterday, "--cloud", "devcloud"
    )
    assert table.returncode == 0 and "price book version 1" in table.stdout

    bad_date = sy(
        priced_env, "cost", "report", "--project", "admin", "--since", "yesterday", "--cloud", "devcloud"
    )
    assert bad_date.returncode == 2 and "since" in bad_date.stderr
    no_project = sy(
        priced_env,
        "cost",
        "report",
        "--project",
        "no-such-project",
        "--since",
        yesterday,
        "--cloud",
        "devcloud",
    )
    assert no_project.returncode == 2 and "project" in no_project.stderr
