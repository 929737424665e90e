"""StaticProvider against the stackyard provider contract, on a state file in a temporary directory."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from stackyard.cloud.models import AddressKind, PowerState
from stackyard.cloud.status import ImageStatus, ServerStatus
from stackyard.errors import CloudError, ConfigError, Conflict, NotFound, ValidationError
from stackyard.pricing.models import PriceBook, RegionPrices, Unit
from stackyard.providers.base import (
    ENTRY_POINT_GROUP,
    InstancePlan,
    InstanceQuery,
    Provider,
    Scope,
)

from stackyard_provider_static import StaticProvider

ADMIN = Scope(project_id=None, is_admin=True)
ALICE = Scope(project_id="alice")
BOB = Scope(project_id="bob")
SMALL = "static.small"


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "instances.json"


@pytest.fixture
def provider(state_file: Path) -> StaticProvider:
    return StaticProvider("lab", {"state_file": str(state_file), "regions": ["one", "two"]})


def image_id(provider: StaticProvider) -> str:
    return provider.images()[0].id


def plan(
    name: str = "web-1",
    *,
    flavor: str = SMALL,
    image_id: str | None = None,
    region: str | None = None,
    tags: tuple[str, ...] = (),
    volume_gib: int = 0,
) -> InstancePlan:
    return InstancePlan(
        name=name, flavor=flavor, image_id=image_id, region=region, tags=tags, volume_gib=volume_gib
    )


# -- the contract ------------------------------------------------------------------------------


def test_it_is_a_provider(provider: StaticProvider) -> None:
    typed: Provider = provider  # mypy checks every method's signature against the Protocol here
    assert isinstance(typed, Provider)
    assert (provider.name, provider.type) == ("lab", "static")
    assert provider.cloud is not None
    assert provider.cloud.endswith("instances.json")


def test_the_installed_package_registers_the_entry_point() -> None:
    found = {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert "static" in found, f"installed {ENTRY_POINT_GROUP} entry points: {sorted(found)}"
    assert found["static"].load() is StaticProvider


# -- options and catalog -----------------------------------------------------------------------


def test_defaults_give_one_region_two_flavors_and_one_image(state_file: Path) -> None:
    provider = StaticProvider("lab", {"state_file": str(state_file)})
    assert [r.id for r in provider.regions()] == ["static-1"]
    assert [(f.name, f.vcpus, f.ram_mib, f.disk_gib) for f in provider.flavors()] == [
        ("static.small", 1, 512, 1),
        ("static.medium", 2, 2048, 10),
    ]
    [image] = provider.images()
    assert (image.name, image.status) == ("static-image", ImageStatus.ACTIVE)


def test_configured_catalog_with_ids_every_process_agrees_on(state_file: Path) -> None:
    options: dict[str, object] = {
        "state_file": str(state_file),
        "regions": ["r1"],
        "flavors": {"big": {"vcpus": 8, "ram_mib": 16384, "disk_gib": 80}},
        "images": ["debian", "alpine"],
    }
    first, second = StaticProvider("a", options), StaticProvider("b", options)
    assert [f.name for f in first.flavors("r1")] == ["big"]
    assert [i.name for i in first.images("r1")] == ["debian", "alpine"]
    assert [i.id for i in first.images()] == [i.id for i in second.images()]
    assert first.flavors()[0].id == second.flavors()[0].id
    with pytest.raises(ValidationError) as caught:
        first.flavors("elsewhere")
    assert caught.value.field == "region"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({}, "state_file"),
        ({"state_file": ""}, "state_file"),
        ({"state_file": "/tmp/x.json", "colour": "blue"}, "colour"),
        ({"state_file": "/tmp/x.json", "regions": []}, "regions"),
        ({"state_file": "/tmp/x.json", "images": ["a", "a"]}, "images"),
        ({"state_file": "/tmp/x.json", "flavors": {"f": {"vcpus": 1}}}, "flavors.f"),
        (
            {"state_file": "/tmp/x.json", "flavors": {"f": {"vcpus": True, "ram_mib": 1, "disk_gib": 0}}},
            "vcpus",
        ),
        (
            {"state_file": "/tmp/x.json", "flavors": {"f": {"vcpus": 1, "ram_mib": 0, "disk_gib": 0}}},
            "ram_mib",
        ),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(options: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        StaticProvider("lab", options)


# -- create, get, list -------------------------------------------------------------------------


def test_create_gives_an_active_instance_of_the_scope_project(provider: StaticProvider) -> None:
    created = provider.create_instance(
        ALICE,
        InstancePlan(
            name="web-1",
            flavor=SMALL,
            image_id=image_id(provider),
            region="two",
            key_name="alice-key",
            tags=["web"],
            metadata={"role": "frontend"},
        ),
    )
    assert created.status is ServerStatus.ACTIVE
    assert created.power_state is PowerState.RUNNING
    assert created.project_id == "alice"
    assert (created.flavor.name, created.flavor.vcpus, created.flavor.ram_mib) == (SMALL, 1, 512)
    assert created.image_id == image_id(provider)
    assert (created.key_name, created.tags, created.metadata) == ("alice-key", ["web"], {"role": "frontend"})
    assert created.created_at is not None
    assert created.created_at.tzinfo is not None
    [address] = created.addresses
    assert address.kind is AddressKind.INTERNAL
    assert provider.get_instance(ALICE, created.id) == created
    assert provider.get_instance(ALICE, created.id, region="two") == created


def test_an_admin_scope_creates_in_the_static_project(provider: StaticProvider) -> None:
    assert provider.create_instance(ADMIN, plan()).project_id == "static"


def test_flavor_by_id_and_image_by_name_are_accepted(provider: StaticProvider) -> None:
    flavor = provider.flavors()[1]
    created = provider.create_instance(ALICE, plan(flavor=flavor.id, image_id="static-image"))
    assert created.flavor.name == flavor.name
    assert created.image_id == image_id(provider)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (plan(""), "name"),
        (plan("   "), "name"),
        (plan(flavor="m1.huge"), "type"),
        (plan(image_id="no-such-image"), "image_id"),
        (plan(region="mars"), "region"),
    ],
)
def test_create_rejects_a_bad_plan_and_writes_nothing(
    provider: StaticProvider, state_file: Path, bad: InstancePlan, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        provider.create_instance(ALICE, bad)
    assert caught.value.field == field
    assert not state_file.exists()


def test_another_worker_sees_the_same_instances(provider: StaticProvider, state_file: Path) -> None:
    created = provider.create_instance(ALICE, plan())
    other_worker = StaticProvider("lab", {"state_file": str(state_file), "regions": ["one", "two"]})
    assert other_worker.get_instance(ALICE, created.id) == created


def test_list_filters_by_region_name_status_and_every_tag(provider: StaticProvider) -> None:
    web1 = provider.create_instance(ALICE, plan("web-1", region="one", tags=("web", "prod")))
    web2 = provider.create_instance(ALICE, plan("web-2", region="two", tags=("web",)))
    db = provider.create_instance(ALICE, plan("db-1", region="one", tags=("prod",)))
    provider.stop_instance(ALICE, db.id)

    def ids(query: InstanceQuery) -> list[str]:
        return [i.id for i in provider.list_instances(ALICE, query).items]

    assert ids(InstanceQuery()) == [db.id, web2.id, web1.id]  # newest first
    assert ids(InstanceQuery(region="one")) == [db.id, web1.id]
    assert ids(InstanceQuery(name="web")) == [web2.id, web1.id]
    assert ids(InstanceQuery(status=ServerStatus.SHUTOFF)) == [db.id]
    assert ids(InstanceQuery(tags=("web", "prod"))) == [web1.id]
    assert ids(InstanceQuery(tags=("prod",))) == [db.id, web1.id]
    with pytest.raises(ValidationError) as caught:
        ids(InstanceQuery(region="mars"))
    assert caught.value.field == "region"


def test_paging_follows_next_marker_to_the_last_page(provider: StaticProvider) -> None:
    created = [provider.create_instance(ALICE, plan(f"vm-{n}")).id for n in range(5)]
    seen: list[str] = []
    pages = 0
    marker: str | None = None
    while True:
        page = provider.list_instances(ALICE, InstanceQuery(limit=2, marker=marker))
        pages += 1
        seen += [i.id for i in page.items]
        if page.next_marker is None:
            break
        assert page.next_marker == page.items[-1].id
        marker = page.next_marker
    assert pages == 3
    assert seen == list(reversed(created))


def test_a_page_that_ends_exactly_at_the_limit_has_no_next_marker(provider: StaticProvider) -> None:
    for n in range(2):
        provider.create_instance(ALICE, plan(f"vm-{n}"))
    page = provider.list_instances(ALICE, InstanceQuery(limit=2))
    assert len(page.items) == 2
    assert page.next_marker is None


def test_paging_goes_on_after_the_marker_stopped_matching(provider: StaticProvider) -> None:
    ids = [provider.create_instance(ALICE, plan(f"vm-{n}")).id for n in range(3)]
    first = provider.list_instances(ALICE, InstanceQuery(status=ServerStatus.ACTIVE, limit=1))
    assert first.next_marker == ids[2]
    provider.stop_instance(ALICE, ids[2])
    rest = provider.list_instances(ALICE, InstanceQuery(status=ServerStatus.ACTIVE, marker=ids[2]))
    assert [i.id for i in rest.items] == [ids[1], ids[0]]


def test_an_unknown_or_foreign_marker_is_a_validation_error(provider: StaticProvider) -> None:
    bobs = provider.create_instance(BOB, plan()).id
    for marker in ("no-such-id", bobs):
        with pytest.raises(ValidationError) as caught:
            provider.list_instances(ALICE, InstanceQuery(marker=marker))
        assert caught.value.field == "marker"


def test_a_limit_below_one_is_a_validation_error(provider: StaticProvider) -> None:
    with pytest.raises(ValidationError) as caught:
        provider.list_instances(ALICE, InstanceQuery(limit=0))
    assert caught.value.field == "limit"


# -- scope -------------------------------------------------------------------------------------


def test_a_project_scope_sees_and_touches_only_its_own_instances(provider: StaticProvider) -> None:
    alices = provider.create_instance(ALICE, plan("alice-vm")).id
    bobs = provider.create_instance(BOB, plan("bob-vm")).id

    assert [i.id for i in provider.list_instances(ALICE, InstanceQuery()).items] == [alices]
    assert {i.id for i in provider.list_instances(ADMIN, InstanceQuery()).items} == {alices, bobs}
    assert provider.get_instance(ADMIN, bobs).project_id == "bob"
    for act in (
        provider.get_instance,
        provider.delete_instance,
        provider.start_instance,
        provider.stop_instance,
        provider.reboot_instance,
    ):
        with pytest.raises(NotFound):
            act(ALICE, bobs)
    assert provider.get_instance(BOB, bobs).status is ServerStatus.ACTIVE  # untouched


def test_an_instance_in_another_region_is_not_found(provider: StaticProvider) -> None:
    created = provider.create_instance(ALICE, plan(region="one"))
    with pytest.raises(NotFound):
        provider.get_instance(ALICE, created.id, region="two")


# -- actions and delete ------------------------------------------------------------------------


def test_stop_start_and_reboot_take_effect_at_once(provider: StaticProvider) -> None:
    created = provider.create_instance(ALICE, plan())

    provider.stop_instance(ALICE, created.id)
    stopped = provider.get_instance(ALICE, created.id)
    assert (stopped.status, stopped.power_state) == (ServerStatus.SHUTOFF, PowerState.SHUTDOWN)
    assert stopped.updated_at is not None
    assert created.updated_at is not None
    assert stopped.updated_at >= created.updated_at

    provider.reboot_instance(ALICE, created.id)  # as a hard reboot: also from SHUTOFF
    assert provider.get_instance(ALICE, created.id).status is ServerStatus.ACTIVE
    provider.reboot_instance(ALICE, created.id)
    provider.stop_instance(ALICE, created.id)
    provider.start_instance(ALICE, created.id)
    started = provider.get_instance(ALICE, created.id)
    assert (started.status, started.power_state) == (ServerStatus.ACTIVE, PowerState.RUNNING)


def test_an_action_from_the_wrong_status_is_a_conflict(provider: StaticProvider) -> None:
    created = provider.create_instance(ALICE, plan())
    with pytest.raises(Conflict):
        provider.start_instance(ALICE, created.id)
    provider.stop_instance(ALICE, created.id)
    with pytest.raises(Conflict):
        provider.stop_instance(ALICE, created.id)


def test_delete_removes_the_instance_and_a_second_delete_is_not_found(provider: StaticProvider) -> None:
    kept = provider.create_instance(ALICE, plan("kept"))
    gone = provider.create_instance(ALICE, plan("gone"))
    provider.delete_instance(ALICE, gone.id)
    with pytest.raises(NotFound):
        provider.get_instance(ALICE, gone.id)
    with pytest.raises(NotFound):
        provider.delete_instance(ALICE, gone.id)
    assert [i.id for i in provider.list_instances(ALICE, InstanceQuery()).items] == [kept.id]


# -- estimate ----------------------------------------------------------------------------------


def test_estimate_prices_the_flavor_size_per_unit(provider: StaticProvider) -> None:
    book = PriceBook(
        version=3,
        currency="EUR",
        regions={
            "*": RegionPrices(
                units={
                    Unit.VCPU_HOUR: Decimal("0.01"),
                    Unit.RAM_GIB_HOUR: Decimal("0.004"),
                    Unit.ROOT_DISK_GIB_MONTH: Decimal("0.073"),
                    Unit.VOLUME_GIB_MONTH: Decimal("0.1"),
                }
            )
        },
    )
    estimate = provider.estimate_cost(plan(volume_gib=10), book, count=2)
    # Each: 1 vCPU 0.01 + 0.5 GiB RAM 0.002 + 1 GiB disk 0.073/730 = 0.0121 an hour, and 10 GiB of volume
    # 1.0 a month (0.00137 an hour); two of them.
    assert estimate.hourly == Decimal("0.026940")
    assert estimate.monthly == Decimal("19.666000")
    assert (estimate.currency, estimate.price_book_version, estimate.count) == ("EUR", 3, 2)
    assert estimate.region == "one"  # the first region, where the instance would be created


def test_estimate_uses_a_flat_flavor_price_of_the_plan_region(provider: StaticProvider) -> None:
    book = PriceBook(1, "USD", {"two": RegionPrices(flavors={SMALL: Decimal("0.05")})})
    estimate = provider.estimate_cost(plan(region="two"), book, count=3)
    assert (estimate.hourly, estimate.monthly) == (Decimal("0.150000"), Decimal("109.500000"))


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (plan(flavor="m1.huge", region="two"), "type"),
        (plan(region="mars"), "region"),  # not a region of the provider
        (plan(region="one"), "region"),  # not priced by the book
        (plan(), "region"),  # the default region, "one", is not priced either
    ],
)
def test_estimate_errors_name_the_field(provider: StaticProvider, bad: InstancePlan, field: str) -> None:
    book = PriceBook(1, "USD", {"two": RegionPrices(flavors={SMALL: Decimal("0.05")})})
    with pytest.raises(ValidationError) as caught:
        provider.estimate_cost(bad, book)
    assert caught.value.field == field


# -- status and the state file -----------------------------------------------------------------


def test_status_is_ok_when_the_state_directory_is_writable(provider: StaticProvider) -> None:
    status = provider.status()
    assert (status.is_reachable, status.is_auth_ok, status.message) == (True, True, None)


def test_status_and_calls_fail_when_the_state_directory_is_missing(tmp_path: Path) -> None:
    provider = StaticProvider("lab", {"state_file": str(tmp_path / "missing" / "state.json")})
    status = provider.status()
    assert not status.is_reachable
    assert status.message is not None
    assert "does not exist" in status.message
    with pytest.raises(CloudError, match="cannot"):
        provider.create_instance(ALICE, plan())


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 1, "next_seq": 1}',
        '{"version": 1, "next_seq": 1, "instances": {"i-1": {"id": "i-1"}}}',
    ],
)
def test_a_corrupt_state_file_is_a_cloud_error(
    provider: StaticProvider, state_file: Path, content: str
) -> None:
    state_file.write_text(content, encoding="utf-8")
    assert not provider.status().is_reachable
    with pytest.raises(CloudError, match="corrupt"):
        provider.list_instances(ADMIN, InstanceQuery())
    with pytest.raises(CloudError, match="corrupt"):
        provider.create_instance(ADMIN, plan())
    assert state_file.read_text(encoding="utf-8") == content  # left for a person to look at


def test_the_state_file_is_replaced_whole_and_leaves_no_temporary_files(
    provider: StaticProvider, state_file: Path
) -> None:
    created = provider.create_instance(ALICE, plan())
    provider.stop_instance(ALICE, created.id)
    assert set(json.loads(state_file.read_text(encoding="utf-8"))["instances"]) == {created.id}
    assert sorted(p.name for p in state_file.parent.iterdir()) == ["instances.json", "instances.json.lock"]


def _create_many(state_file: str, worker: int, count: int) -> list[str]:
    provider = StaticProvider("lab", {"state_file": state_file})
    return [provider.create_instance(ALICE, plan(f"w{worker}-{n}")).id for n in range(count)]


def test_concurrent_workers_lose_no_write(state_file: Path) -> None:
    workers, each = 4, 15
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_create_many, str(state_file), w, each) for w in range(workers)]
        created = {i for f in futures for i in f.result()}
    provider = StaticProvider("lab", {"state_file": str(state_file)})
    listed = provider.list_instances(ALICE, InstanceQuery(limit=1000)).items
    assert {i.id for i in listed} == created
    assert len(created) == workers * each
    assert len({i.addresses[0].ip for i in listed}) == workers * each  # every create got its own seq


def test_close_can_be_called_and_the_provider_still_works(provider: StaticProvider) -> None:
    provider.close()
    provider.create_instance(ALICE, plan())


def test_the_default_region_is_the_first_configured_one(provider: StaticProvider) -> None:
    assert provider.default_region() == "one"
    created = provider.create_instance(ALICE, plan())
    assert provider.list_instances(ALICE, InstanceQuery(region="one")).items == [created]
