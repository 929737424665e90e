"""Selecting devcloud services: parsing, closure over requirements, broker need."""

from __future__ import annotations

import pytest

from stackyard.devcloud.components import (
    ALL,
    Component,
    databases,
    needs_broker,
    ordered,
    parse_components,
)
from stackyard.errors import ValidationError


def test_default_is_everything() -> None:
    assert parse_components(None) == ALL
    assert parse_components("all") == ALL


def test_quota_subset_needs_no_broker_and_adds_identity() -> None:
    chosen = parse_components("compute-api, network,volume-api")
    assert chosen == {Component.IDENTITY, Component.COMPUTE_API, Component.NETWORK, Component.VOLUME_API}
    assert not needs_broker(chosen)
    assert databases(chosen) == ["keystone", "nova_api", "nova", "nova_cell0", "neutron", "cinder"]


def test_compute_pulls_in_what_nova_needs() -> None:
    chosen = parse_components("compute")
    assert {Component.PLACEMENT, Component.NETWORK, Component.IMAGE, Component.COMPUTE_API} <= chosen
    assert needs_broker(chosen)
    assert ordered(chosen)[0] is Component.IDENTITY
    assert ordered(chosen)[-1] is Component.COMPUTE


def test_unknown_service_names_the_field_and_the_choices() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_components("identity,dns")
    assert caught.value.field == "services"
    assert "'dns'" in caught.value.message
    assert "compute-api" in caught.value.message


def test_every_executable_the_launcher_checks_maps_to_a_debian_package() -> None:
    from stackyard.devcloud.install import DEBIAN_PACKAGES

    for executable in ("memcached", "mariadb", "mariadb-dump", "mariadbd", "rabbitmq-server"):
        assert DEBIAN_PACKAGES[executable]
