"""Price book documents: validation with dotted field names, normalisation, and the round trip."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from stackyard.errors import ValidationError
from stackyard.pricing.models import (
    ANY_REGION,
    PriceBook,
    RegionPrices,
    Unit,
    parse_price_book,
    price_book_document,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pricebook.yaml"


def document() -> dict[str, object]:
    return {
        "currency": "EUR",
        "regions": {
            "RegionOne": {
                "flavors": {"m1.small": "0.02", "m1.large": 0.08},
                "units": {
                    "vcpu_hour": 0.01,
                    "ram_gib_hour": "0.005",
                    "root_disk_gib_month": 0.04,
                    "volume_gib_month": "0.05",
                    "floating_ip_hour": 0.004,
                    "object_gib_month": 2,
                },
            },
            "*": {"units": {"vcpu_hour": "0.02"}},
        },
    }


def rejected(doc: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_price_book(doc)  # type: ignore[arg-type]
    return caught.value


def test_parses_numbers_and_numeric_strings_exactly() -> None:
    book = parse_price_book(document(), version=7)
    assert book.version == 7 and book.currency == "EUR"
    region = book.regions["RegionOne"]
    assert region.flavors == {"m1.small": Decimal("0.02"), "m1.large": Decimal("0.08")}
    # floats go through their repr: 0.004, not 0.00400000000000000008326672684688674053177237510681...
    assert str(region.units[Unit.FLOATING_IP_HOUR]) == "0.004"
    assert region.units[Unit.OBJECT_GIB_MONTH] == Decimal(2)
    assert set(region.units) == set(Unit)
    assert book.regions[ANY_REGION] == RegionPrices(flavors={}, units={Unit.VCPU_HOUR: Decimal("0.02")})


def test_default_version_is_zero_and_zero_prices_are_allowed() -> None:
    doc = {"currency": "USD", "regions": {"r": {"units": {"vcpu_hour": 0, "ram_gib_hour": "0.0"}}}}
    book = parse_price_book(doc)
    assert book.version == 0
    assert book.regions["r"].units[Unit.VCPU_HOUR] == 0


def test_sample_price_book_parses_and_covers_the_devcloud_flavors() -> None:
    book = parse_price_book(yaml.safe_load(EXAMPLE.read_text()))
    assert book.currency == "EUR"
    region_one = book.regions["RegionOne"]
    assert set(region_one.flavors) == {"m1.tiny", "m1.small", "m1.medium", "m1.large"}
    assert set(region_one.units) == set(Unit)
    assert set(book.regions[ANY_REGION].units) == set(Unit)


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d.pop("currency"), "currency", "missing"),
        (lambda d: d.update(currency="eur"), "currency", "'EUR'"),
        (lambda d: d.update(currency="EURO"), "currency", "3-letter"),
        (lambda d: d.update(currency="E1R"), "currency", "3-letter"),
        (lambda d: d.update(currency=978), "currency", "3-letter"),
        (lambda d: d.update(currency="ÉUR"), "currency", "3-letter"),
        (lambda d: d.update(version=3), "version", "unknown key"),
        (lambda d: d.pop("regions"), "regions", "missing"),
        (lambda d: d.update(regions={}), "regions", "at least one region"),
        (lambda d: d.update(regions=["RegionOne"]), "regions", "mapping"),
        (lambda d: d["regions"].update({"": {"units": {"vcpu_hour": 1}}}), "regions.", "non-empty"),
        (lambda d: d["regions"].update({"R2": "cheap"}), "regions.R2", "mapping"),
        (lambda d: d["regions"].update({"R2": {}}), "regions.R2", "at least one"),
        (lambda d: d["regions"].update({"R2": {"flavors": {}, "units": {}}}), "regions.R2", "at least one"),
        (
            lambda d: d["regions"].update({"R2": {"units": {"vcpu_hour": 1}, "discounts": {}}}),
            "regions.R2.discounts",
            "flavors, units",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(gpu_hour=1),
            "regions.RegionOne.units.gpu_hour",
            "vcpu_hour",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour=-0.01),
            "regions.RegionOne.units.vcpu_hour",
            "negative",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour="cheap"),
            "regions.RegionOne.units.vcpu_hour",
            "price",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour=True),
            "regions.RegionOne.units.vcpu_hour",
            "price",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour=float("nan")),
            "regions.RegionOne.units.vcpu_hour",
            "finite",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour="Infinity"),
            "regions.RegionOne.units.vcpu_hour",
            "finite",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour=float("-inf")),
            "regions.RegionOne.units.vcpu_hour",
            "finite",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour="1e999999999"),
            "regions.RegionOne.units.vcpu_hour",
            "below",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour=1e-20),
            "regions.RegionOne.units.vcpu_hour",
            "decimal places",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour=None),
            "regions.RegionOne.units.vcpu_hour",
            "price",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["units"].update(vcpu_hour=[1]),
            "regions.RegionOne.units.vcpu_hour",
            "price",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["flavors"].update({"m1.tiny": "-1"}),
            "regions.RegionOne.flavors.m1.tiny",
            "negative",
        ),
        (
            lambda d: d["regions"]["RegionOne"]["flavors"].update({5: "1"}),
            "regions.RegionOne.flavors.5",
            "non-empty string",
        ),
        (
            lambda d: d["regions"]["RegionOne"].update(flavors=["m1.small"]),
            "regions.RegionOne.flavors",
            "mapping",
        ),
        (
            lambda d: d["regions"]["RegionOne"].update(units="0.01"),
            "regions.RegionOne.units",
            "mapping",
        ),
    ],
)
def test_invalid_documents_name_the_field(mutate: object, field: str, words: str) -> None:
    doc = copy.deepcopy(document())
    mutate(doc)  # type: ignore[operator]
    error = rejected(doc)
    assert error.field == field
    assert words in error.message


def test_unknown_unit_lists_the_known_ones() -> None:
    doc = copy.deepcopy(document())
    doc["regions"]["*"]["units"]["gib_ram_hour"] = 1  # type: ignore[index]
    error = rejected(doc)
    assert error.field == "regions.*.units.gib_ram_hour"
    for unit in Unit:
        assert unit.value in error.message


def test_not_a_mapping_at_all() -> None:
    assert rejected(["currency", "EUR"]).field == "price_book"
    assert rejected(None).field == "price_book"


def test_document_round_trips_and_is_json_ready() -> None:
    book = parse_price_book(document(), version=3)
    doc = price_book_document(book)
    assert json.loads(json.dumps(doc)) == doc
    assert parse_price_book(doc, version=3) == book
    regions = doc["regions"]
    assert isinstance(regions, dict)
    assert regions["RegionOne"]["flavors"]["m1.large"] == "0.08"
    assert regions["RegionOne"]["units"]["object_gib_month"] == "2"
    assert "flavors" not in regions["*"]  # empty sections are left out


def test_document_writes_plain_decimals_never_exponents() -> None:
    book = PriceBook(
        version=1,
        currency="CHF",
        regions={
            "r": RegionPrices(units={Unit.VCPU_HOUR: Decimal("1E+2"), Unit.RAM_GIB_HOUR: Decimal("1E-7")})
        },
    )
    units = price_book_document(book)["regions"]["r"]["units"]  # type: ignore[index]
    assert units == {"vcpu_hour": "100", "ram_gib_hour": "0.0000001"}
    assert parse_price_book(price_book_document(book), version=1) == book


def test_trailing_zeros_do_not_count_as_decimal_places() -> None:
    doc = {"currency": "EUR", "regions": {"r": {"units": {"vcpu_hour": "0.12345678901200000000"}}}}
    assert parse_price_book(doc).regions["r"].units[Unit.VCPU_HOUR] == Decimal("0.123456789012")


def test_negative_zero_is_zero() -> None:
    book = parse_price_book({"currency": "EUR", "regions": {"r": {"units": {"vcpu_hour": "-0"}}}})
    assert price_book_document(book)["regions"]["r"]["units"]["vcpu_hour"] == "0"  # type: ignore[index]
