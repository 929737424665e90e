"""Reclamation: parsing the policy, choosing what to remove newest first, and the order of the steps."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.errors import ValidationError
from stackyard.quotas.models import UNLIMITED, Resource
from stackyard.quotas.reclaim import (
    OwnedFloatingIp,
    OwnedServer,
    OwnedVolume,
    ReclaimAction,
    ReclaimPlan,
    ReclaimPolicy,
    ReclaimStep,
    parse_reclaim_policy,
    plan_reclaim,
    reclaim_policy_document,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)

R = Resource
A = ReclaimAction
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
NO_DELETE = ReclaimPolicy(delete=False)
HOOK = "https://hooks.uni.example/stackyard?token=secret"


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def server(
    id: str,
    hours: int | None,
    *,
    vcpus: int = 1,
    ram: int = 1024,
    running: bool = True,
    name: str | None = None,
) -> OwnedServer:
    return OwnedServer(id, name or f"vm-{id}", None if hours is None else at(hours), vcpus, ram, running)


def volume(id: str, hours: int | None, *, size: int = 10, attached_to: tuple[str, ...] = ()) -> OwnedVolume:
    return OwnedVolume(id, f"vol-{id}", None if hours is None else at(hours), size, attached_to)


def fip(id: str, hours: int | None) -> OwnedFloatingIp:
    return OwnedFloatingIp(id, f"203.0.113.{len(id)}", None if hours is None else at(hours))


def actions(plan: ReclaimPlan) -> list[tuple[ReclaimAction, str]]:
    return [(s.action, s.target_id) for s in plan.steps]


def plan_servers(
    target: dict[Resource, int], servers: Sequence[OwnedServer], *, stop: bool = True, snapshot: bool = False
) -> ReclaimPlan:
    return plan_reclaim(target, servers, [], [], ReclaimPolicy(stop=stop, snapshot=snapshot))


# -- parse_reclaim_policy ----------------------------------------------------------------------------


@pytest.mark.parametrize("document", [None, {}])
def test_no_document_is_the_default_policy(document: object) -> None:
    assert parse_reclaim_policy(document) == ReclaimPolicy(
        notify_url=None, stop=True, snapshot=False, delete=True
    )


def test_a_full_document() -> None:
    document = {"notify_url": HOOK, "stop": False, "snapshot": True, "delete": False}
    assert parse_reclaim_policy(document) == ReclaimPolicy(HOOK, stop=False, snapshot=True, delete=False)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"snapshot": True}, ReclaimPolicy(snapshot=True)),
        ({"delete": False}, ReclaimPolicy(delete=False)),
        ({"stop": False}, ReclaimPolicy(stop=False)),
        ({"notify_url": None}, ReclaimPolicy()),
        ({"notify_url": ""}, ReclaimPolicy()),
        ({"notify_url": "  http://10.0.0.5:8080/hook  "}, ReclaimPolicy("http://10.0.0.5:8080/hook")),
        ({"notify_url": "https://[2001:db8::1]/h"}, ReclaimPolicy("https://[2001:db8::1]/h")),
    ],
)
def test_keys_left_out_keep_their_defaults(document: dict[str, object], expected: ReclaimPolicy) -> None:
    assert parse_reclaim_policy(document) == expected


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("stop", "reclamation"),
        ([{"stop": True}], "reclamation"),
        (True, "reclamation"),
        ({"snapshots": True}, "reclamation.snapshots"),
        ({"stop": True, "notify": HOOK}, "reclamation.notify"),
        ({1: True}, "reclamation.1"),
        ({"stop": "yes"}, "reclamation.stop"),
        ({"stop": 1}, "reclamation.stop"),
        ({"snapshot": None}, "reclamation.snapshot"),
        ({"delete": "false"}, "reclamation.delete"),
        ({"notify_url": 5}, "reclamation.notify_url"),
        ({"notify_url": ["https://x.example"]}, "reclamation.notify_url"),
        ({"notify_url": "ftp://files.example/x"}, "reclamation.notify_url"),
        ({"notify_url": "hooks.example/x"}, "reclamation.notify_url"),
        ({"notify_url": "https://"}, "reclamation.notify_url"),
        ({"notify_url": "http:///path"}, "reclamation.notify_url"),
        ({"notify_url": "https://ho st.example/"}, "reclamation.notify_url"),
        ({"notify_url": "https://x.example:99999/"}, "reclamation.notify_url"),
        ({"notify_url": "https://x.example:port/"}, "reclamation.notify_url"),
        ({"notify_url": "https://[::1/"}, "reclamation.notify_url"),
        ({"notify_url": "javascript:alert(1)"}, "reclamation.notify_url"),
        ({"notify_url": "file:///etc/passwd"}, "reclamation.notify_url"),
    ],
)
def test_a_bad_policy_names_its_field(document: object, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_reclaim_policy(document)
    assert caught.value.field == field


def test_the_field_prefix_is_the_callers() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_reclaim_policy({"snapshot": "no"}, "courses[CS101].reclamation")
    assert caught.value.field == "courses[CS101].reclamation.snapshot"


def test_an_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="notify_url, stop, snapshot, delete"):
        parse_reclaim_policy({"dry_run": True})


@pytest.mark.parametrize(
    "policy",
    [
        ReclaimPolicy(),
        ReclaimPolicy(HOOK, stop=False, snapshot=True, delete=False),
        ReclaimPolicy(delete=False),
    ],
)
def test_the_policy_document_round_trips(policy: ReclaimPolicy) -> None:
    assert parse_reclaim_policy(reclaim_policy_document(policy)) == policy


# -- nothing to reclaim ------------------------------------------------------------------------------


def test_a_project_within_its_quota_has_an_empty_plan_and_no_notice() -> None:
    plan = plan_reclaim(
        {R.INSTANCES: 2, R.CORES: 2, R.RAM: 2048, R.VOLUMES: 1, R.GIGABYTES: 10, R.FLOATING_IPS: 1},
        [server("a", 1), server("b", 2)],
        [volume("v", 1)],
        [fip("f", 1)],
        ReclaimPolicy(notify_url=HOOK, snapshot=True),
    )
    assert plan == ReclaimPlan(())
    assert plan.is_empty and plan.notify_url is None
    assert (plan.servers, plan.volumes, plan.floating_ips) == ((), (), ())


def test_a_project_holding_nothing_has_an_empty_plan() -> None:
    assert plan_reclaim(dict.fromkeys(Resource, 0), [], [], [], ReclaimPolicy(HOOK)).is_empty


def test_an_unconstrained_resource_never_forces_removal() -> None:
    servers = [server(str(n), n, vcpus=8, ram=65536) for n in range(5)]
    assert plan_servers({}, servers).is_empty
    assert plan_servers({R.INSTANCES: UNLIMITED, R.CORES: UNLIMITED, R.RAM: UNLIMITED}, servers).is_empty
    assert plan_servers({R.VOLUMES: 0, R.FLOATING_IPS: 0}, servers).is_empty


# -- choosing servers --------------------------------------------------------------------------------


def test_servers_go_newest_first_until_the_count_fits() -> None:
    servers = [server("old", 1), server("newest", 3), server("mid", 2)]
    plan = plan_servers({R.INSTANCES: 1}, servers)
    assert actions(plan) == [
        (A.STOP, "newest"),
        (A.STOP, "mid"),
        (A.DELETE_SERVER, "newest"),
        (A.DELETE_SERVER, "mid"),
    ]
    assert [s.reason for s in plan.steps] == ["instances 3 > 1", "instances 2 > 1"] * 2
    assert plan.servers == ("newest", "mid")


def test_an_unknown_creation_time_counts_as_oldest() -> None:
    plan = plan_servers({R.INSTANCES: 1}, [server("unknown", None), server("a", -1000), server("b", 5)])
    assert plan.servers == ("b", "a")


def test_equal_creation_times_are_ordered_by_id() -> None:
    servers = [server("b", 1), server("c", 1), server("a", 1), server("x", None), server("w", None)]
    expected = ("c", "b", "a", "x")
    for _ in range(10):
        random.shuffle(servers)
        assert plan_servers({R.INSTANCES: 1}, servers).servers == expected


def test_naive_and_aware_times_compare_as_utc() -> None:
    naive = OwnedServer("naive", "n", datetime(2025, 3, 1, 12, 0), 1, 1, True)
    paris = OwnedServer(
        "paris", "p", datetime(2025, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=1))), 1, 1, True
    )
    plan = plan_servers({R.INSTANCES: 1}, [paris, naive])
    assert plan.servers == ("naive",)  # 12:00 UTC is newer than 11:30 UTC


def test_cores_and_ram_force_more_removals_than_the_count() -> None:
    servers = [
        server("big", 1, vcpus=8, ram=16384),
        server("small1", 2, vcpus=1),
        server("small2", 3, vcpus=1),
    ]
    plan = plan_servers({R.INSTANCES: 5, R.CORES: 4, R.RAM: 100_000}, servers)
    assert plan.servers == ("small2", "small1", "big")  # newest first, even though 'big' alone would do
    assert [s.reason for s in plan.steps if s.action is A.DELETE_SERVER] == [
        "cores 10 > 4",
        "cores 9 > 4",
        "cores 8 > 4",
    ]
    plan = plan_servers({R.RAM: 2048}, servers)
    assert plan.servers == ("small2", "small1", "big")
    assert plan.steps[0].reason == "ram 18432 > 2048"


def test_every_limit_over_is_in_the_reason() -> None:
    plan = plan_servers({R.INSTANCES: 0, R.CORES: 1, R.RAM: 0}, [server("a", 1, vcpus=2, ram=512)])
    assert plan.steps[0].reason == "instances 1 > 0, cores 2 > 1, ram 512 > 0"


def test_a_zero_quota_takes_every_server() -> None:
    servers = [server(str(n), n) for n in range(4)]
    assert plan_servers({R.INSTANCES: 0}, servers).servers == ("3", "2", "1", "0")


def test_only_running_servers_are_stopped_and_every_chosen_one_is_snapshotted() -> None:
    servers = [server("on", 2), server("off", 3, running=False), server("kept", 1)]
    plan = plan_servers({R.INSTANCES: 1}, servers, snapshot=True)
    assert actions(plan) == [
        (A.STOP, "on"),
        (A.SNAPSHOT, "off"),
        (A.SNAPSHOT, "on"),
        (A.DELETE_SERVER, "off"),
        (A.DELETE_SERVER, "on"),
    ]
    assert plan.servers == ("off", "on")


def test_without_stop_servers_are_deleted_running() -> None:
    plan = plan_servers({R.INSTANCES: 0}, [server("a", 1)], stop=False)
    assert actions(plan) == [(A.DELETE_SERVER, "a")]


def test_steps_name_their_targets() -> None:
    plan = plan_servers({R.INSTANCES: 0}, [server("id-1", 1, name="lab-vm")])
    assert plan.steps[0] == ReclaimStep(A.STOP, "id-1", "lab-vm", "instances 1 > 0")


# -- choosing volumes and floating IPs ---------------------------------------------------------------


def test_volumes_go_newest_first_by_count_and_size() -> None:
    volumes = [volume("v1", 1, size=50), volume("v2", 2, size=5), volume("v3", 3, size=5)]
    plan = plan_reclaim({R.VOLUMES: 2}, [], volumes, [], ReclaimPolicy())
    assert actions(plan) == [(A.DELETE_VOLUME, "v3")]
    assert plan.steps[0].reason == "volumes 3 > 2"
    plan = plan_reclaim({R.GIGABYTES: 50}, [], volumes, [], ReclaimPolicy())
    assert plan.volumes == ("v3", "v2")
    assert [s.reason for s in plan.steps] == ["gigabytes 60 > 50", "gigabytes 55 > 50"]
    plan = plan_reclaim({R.GIGABYTES: 55}, [], volumes, [], ReclaimPolicy())
    assert plan.volumes == ("v3",)
    plan = plan_reclaim({R.GIGABYTES: 40, R.VOLUMES: 3}, [], volumes, [], ReclaimPolicy())
    assert plan.volumes == ("v3", "v2", "v1")


def test_volumes_of_removed_servers_go_first_and_those_of_staying_servers_last() -> None:
    servers = [server("old", 1), server("new", 2)]  # 'new' goes, 'old' stays
    volumes = [
        volume("on-old", 9, attached_to=("old",)),
        volume("free-new", 8),
        volume("free-old", 3),
        volume("on-new", 1, attached_to=("new",)),
        volume("on-both", 7, attached_to=("new", "old")),
    ]
    plan = plan_reclaim({R.INSTANCES: 1, R.VOLUMES: 0}, servers, volumes, [], ReclaimPolicy(stop=False))
    assert plan.volumes == ("on-new", "free-new", "free-old", "on-old", "on-both")
    reasons = {s.target_id: s.reason for s in plan.steps if s.action is A.DELETE_VOLUME}
    assert reasons["on-new"] == "volumes 5 > 0"
    assert reasons["on-old"] == "volumes 2 > 0; attached to server(s) that stay: old"
    assert reasons["on-both"] == "volumes 1 > 0; attached to server(s) that stay: old"


def test_floating_ips_go_newest_first_until_the_count_fits() -> None:
    ips = [fip("f1", 1), fip("f2", None), fip("f3", 5)]
    plan = plan_reclaim({R.FLOATING_IPS: 1}, [], [], ips, ReclaimPolicy())
    assert actions(plan) == [(A.RELEASE_FLOATING_IP, "f3"), (A.RELEASE_FLOATING_IP, "f1")]
    assert plan.steps[0].target_name == ips[2].address
    assert [s.reason for s in plan.steps] == ["floatingip 3 > 1", "floatingip 2 > 1"]
    assert plan.floating_ips == ("f3", "f1")


# -- the order of the steps and the policy -----------------------------------------------------------


def over_everything(policy: ReclaimPolicy) -> ReclaimPlan:
    return plan_reclaim(
        {R.INSTANCES: 0, R.VOLUMES: 0, R.FLOATING_IPS: 0},
        [server("s1", 1), server("s2", 2, running=False)],
        [volume("v1", 1)],
        [fip("f1", 1)],
        policy,
    )


def test_the_full_policy_runs_every_kind_of_step_in_order() -> None:
    plan = over_everything(ReclaimPolicy(HOOK, stop=True, snapshot=True, delete=True))
    assert actions(plan) == [
        (A.NOTIFY, ""),
        (A.STOP, "s1"),
        (A.SNAPSHOT, "s2"),
        (A.SNAPSHOT, "s1"),
        (A.DELETE_SERVER, "s2"),
        (A.DELETE_SERVER, "s1"),
        (A.DELETE_VOLUME, "v1"),
        (A.RELEASE_FLOATING_IP, "f1"),
    ]
    notify = plan.steps[0]
    assert notify.target_name == "hooks.uni.example"  # the URL itself (it may hold a token) stays out
    assert notify.reason == "2 server(s), 1 volume(s) and 1 floating IP(s) beyond the quota"
    assert plan.notify_url == HOOK
    assert all("secret" not in f"{s.target_id}{s.target_name}{s.reason}" for s in plan.steps)


def test_without_delete_the_plan_ends_after_stopping_and_snapshotting() -> None:
    plan = over_everything(ReclaimPolicy(HOOK, snapshot=True, delete=False))
    assert actions(plan) == [(A.NOTIFY, ""), (A.STOP, "s1"), (A.SNAPSHOT, "s2"), (A.SNAPSHOT, "s1")]
    assert plan.servers == ("s2", "s1") and plan.volumes == plan.floating_ips == ()


def test_a_policy_that_only_notifies() -> None:
    plan = over_everything(ReclaimPolicy(HOOK, stop=False, snapshot=False, delete=False))
    assert actions(plan) == [(A.NOTIFY, "")]
    assert not plan.is_empty and plan.notify_url == HOOK


def test_a_policy_that_does_nothing_plans_nothing() -> None:
    plan = over_everything(ReclaimPolicy(None, stop=False, snapshot=False, delete=False))
    assert plan.is_empty and plan.notify_url is None


def test_no_notice_without_a_url() -> None:
    plan = over_everything(ReclaimPolicy())
    assert plan.steps[0].action is A.STOP and plan.notify_url is None


def test_a_notice_goes_out_for_volumes_or_floating_ips_alone() -> None:
    plan = plan_reclaim({R.FLOATING_IPS: 0}, [], [], [fip("f", 1)], ReclaimPolicy(HOOK))
    assert actions(plan) == [(A.NOTIFY, ""), (A.RELEASE_FLOATING_IP, "f")]


def test_an_empty_plan_from_the_caller_is_empty() -> None:
    plan = ReclaimPlan(())
    assert plan.is_empty and plan.notify_url is None and plan.servers == ()


# -- properties over generated projects --------------------------------------------------------------

server_lists = st.lists(
    st.builds(
        OwnedServer,
        id=st.text("abcdef", min_size=1, max_size=3),
        name=st.just("vm"),
        created_at=st.none() | st.integers(0, 20).map(at),
        vcpus=st.integers(0, 8),
        ram_mib=st.sampled_from([0, 512, 1024, 4096]),
        is_running=st.booleans(),
    ),
    max_size=8,
    unique_by=lambda s: s.id,
)
limit = st.none() | st.integers(-1, 20)


@PROPERTY
@given(servers=server_lists, instances=limit, cores=limit, ram=st.none() | st.integers(-1, 20000))
def test_servers_removed_are_the_shortest_newest_prefix_that_fits(
    servers: list[OwnedServer], instances: int | None, cores: int | None, ram: int | None
) -> None:
    target = {r: v for r, v in ((R.INSTANCES, instances), (R.CORES, cores), (R.RAM, ram)) if v is not None}
    plan = plan_servers(target, servers)
    removed = set(plan.servers)

    def fits(kept: Sequence[OwnedServer]) -> bool:
        used = {
            R.INSTANCES: len(kept),
            R.CORES: sum(s.vcpus for s in kept),
            R.RAM: sum(s.ram_mib for s in kept),
        }
        return all(used[r] <= v for r, v in target.items() if v >= 0)

    ordered = sorted(
        servers, key=lambda s: (s.created_at or datetime.min.replace(tzinfo=UTC), s.id), reverse=True
    )
    assert list(plan.servers) == [s.id for s in ordered[: len(removed)]]  # a newest-first prefix
    assert fits([s for s in servers if s.id not in removed])
    if removed:  # and the shortest one: keeping the last server taken would not fit
        assert not fits(ordered[len(removed) - 1 :])
    assert plan_servers(target, list(reversed(servers))) == plan  # the input order does not matter
    assert [s.action for s in plan.steps] == [A.STOP] * sum(
        1 for s in servers if s.id in removed and s.is_running
    ) + [A.DELETE_SERVER] * len(removed)


volume_lists = st.lists(
    st.builds(
        OwnedVolume,
        id=st.text("abcdef", min_size=1, max_size=3),
        name=st.just("vol"),
        created_at=st.none() | st.integers(0, 20).map(at),
        size_gib=st.integers(0, 50),
        attached_to=st.lists(st.sampled_from(["s1", "s2"]), max_size=2, unique=True).map(tuple),
    ),
    max_size=8,
    unique_by=lambda v: v.id,
)


@PROPERTY
@given(
    volumes=volume_lists,
    count=limit,
    gigabytes=st.none() | st.integers(-1, 200),
    ips=st.integers(0, 5),
    fips=limit,
)
def test_what_remains_of_volumes_and_floating_ips_fits(
    volumes: list[OwnedVolume], count: int | None, gigabytes: int | None, ips: int, fips: int | None
) -> None:
    target = {
        r: v
        for r, v in ((R.VOLUMES, count), (R.GIGABYTES, gigabytes), (R.FLOATING_IPS, fips))
        if v is not None
    }
    floating = [fip(f"f{n}", n) for n in range(ips)]
    plan = plan_reclaim(target, [server("s1", 1)], volumes, floating, ReclaimPolicy())
    kept = [v for v in volumes if v.id not in plan.volumes]
    if count is not None and count >= 0:
        assert len(kept) <= count
    if gigabytes is not None and gigabytes >= 0:
        assert sum(v.size_gib for v in kept) <= gigabytes
    expected_ips = 0 if fips is None or fips < 0 else max(0, ips - fips)
    assert plan.floating_ips == tuple(f"f{n}" for n in reversed(range(ips)))[:expected_ips]
    # no server is removed: an attached volume is only taken once every detached one is
    staying = [v.id for v in volumes if v.attached_to]
    taken = list(plan.volumes)
    first_staying = next((i for i, vid in enumerate(taken) if vid in staying), len(taken))
    assert all(vid in staying for vid in taken[first_staying:])
    if any(vid in staying for vid in taken):
        assert set(taken) >= {v.id for v in volumes if v.id not in staying}
