"""Quota arithmetic: desired quotas, parsing quota documents, plans against the cloud's limits, drift."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.errors import ValidationError
from stackyard.quotas.models import (
    MAX_QUOTA_VALUE,
    UNLIMITED,
    ChangeAction,
    ProjectOutcome,
    QuotaPlan,
    Resource,
    ResourceChange,
    Service,
    desired_quota,
    drifted,
    parse_quota_values,
    plan_quota,
    quota_document,
    services_needing_usage,
    zero_quota,
)

# No example database: unit tests leave nothing behind in the working tree.
PROPERTY = settings(database=None, deadline=None, max_examples=300)

R = Resource
ALL = tuple(Resource)
INFINITY = float("inf")


def effective(limit: int) -> float:
    """A limit as a number to compare: UNLIMITED is above everything."""
    return INFINITY if limit == UNLIMITED else limit


# -- the vocabulary --------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ALL)
def test_every_resource_names_its_service_and_key(resource: Resource) -> None:
    assert resource.value == f"{resource.service.value}.{resource.key}"
    assert Resource.of(resource.service, resource.key) is resource


def test_every_service_has_resources() -> None:
    assert {r.service for r in Resource} == set(Service)


def test_resource_of_an_unknown_key_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"compute\.floatingip"):
        Resource.of(Service.COMPUTE, "floatingip")


def test_zero_quota_sets_every_resource_to_zero() -> None:
    assert zero_quota() == dict.fromkeys(ALL, 0)
    first, second = zero_quota(), zero_quota()
    first[R.CORES] = 3
    assert second[R.CORES] == 0  # a fresh dict each time


# -- desired_quota ---------------------------------------------------------------------------------


def test_baseline_only_fills_every_resource() -> None:
    baseline = {R.INSTANCES: 1, R.PORTS: 10}
    result = desired_quota(baseline, [])
    assert set(result) == set(ALL)
    assert result == {**dict.fromkeys(ALL, 0), R.INSTANCES: 1, R.PORTS: 10}


def test_nothing_at_all_is_zero_everywhere() -> None:
    assert desired_quota({}, []) == zero_quota()


def test_profiles_add_to_the_baseline() -> None:
    baseline = {R.INSTANCES: 1, R.CORES: 1, R.NETWORKS: 1}
    lab = {R.INSTANCES: 2, R.CORES: 4, R.RAM: 4096}
    storage = {R.VOLUMES: 3, R.GIGABYTES: 50, R.CORES: 2}
    result = desired_quota(baseline, [lab, storage, lab])
    assert result[R.INSTANCES] == 1 + 2 + 2
    assert result[R.CORES] == 1 + 4 + 2 + 4
    assert result[R.RAM] == 8192
    assert result[R.VOLUMES] == 3 and result[R.GIGABYTES] == 50
    assert result[R.NETWORKS] == 1
    assert result[R.FLOATING_IPS] == 0  # in nobody's profile
    assert set(result) == set(ALL)


def test_profiles_may_be_a_one_shot_iterable() -> None:
    profiles = ({R.CORES: n} for n in (1, 2, 3))
    assert desired_quota({}, profiles)[R.CORES] == 6


def test_caps_bound_the_sum_only_where_given() -> None:
    baseline = {R.CORES: 4, R.RAM: 1024}
    profiles = [{R.CORES: 64, R.RAM: 1024}]
    result = desired_quota(baseline, profiles, {R.CORES: 16, R.RAM: 100_000, R.VOLUMES: 5})
    assert result[R.CORES] == 16  # capped
    assert result[R.RAM] == 2048  # cap above the sum: the sum
    assert result[R.VOLUMES] == 0  # cap on an absent resource: still 0
    assert set(result) == set(ALL)


def test_a_zero_cap_forbids_the_resource() -> None:
    assert desired_quota({R.FLOATING_IPS: 1}, [{R.FLOATING_IPS: 3}], {R.FLOATING_IPS: 0})[R.FLOATING_IPS] == 0


@pytest.mark.parametrize("caps", [None, {}])
def test_no_caps_means_no_bound(caps: dict[Resource, int] | None) -> None:
    assert desired_quota({R.CORES: 10**6}, [{R.CORES: 10**6}], caps)[R.CORES] == 2 * 10**6


def test_inputs_are_not_modified() -> None:
    baseline = {R.CORES: 1}
    profile = {R.CORES: 2}
    caps = {R.CORES: 2}
    desired_quota(baseline, [profile], caps)
    assert (baseline, profile, caps) == ({R.CORES: 1}, {R.CORES: 2}, {R.CORES: 2})


values = st.dictionaries(st.sampled_from(ALL), st.integers(0, 1000), max_size=len(ALL))


@PROPERTY
@given(baseline=values, profiles=st.lists(values, max_size=5), caps=st.none() | values)
def test_desired_is_the_capped_sum(
    baseline: dict[Resource, int], profiles: list[dict[Resource, int]], caps: dict[Resource, int] | None
) -> None:
    result = desired_quota(baseline, profiles, caps)
    assert set(result) == set(ALL)
    for resource in ALL:
        total = baseline.get(resource, 0) + sum(p.get(resource, 0) for p in profiles)
        bound = (caps or {}).get(resource)
        assert result[resource] == (total if bound is None else min(total, bound))


# -- parse_quota_values ----------------------------------------------------------------------------


def test_a_nested_document_parses_into_resources() -> None:
    document = {
        "compute": {"instances": 2, "cores": 4, "ram": 4096},
        "block_storage": {"volumes": 1, "gigabytes": 0},
        "network": {"floatingip": 1, "security_group_rule": 100},
    }
    assert parse_quota_values(document) == {
        R.INSTANCES: 2,
        R.CORES: 4,
        R.RAM: 4096,
        R.VOLUMES: 1,
        R.GIGABYTES: 0,
        R.FLOATING_IPS: 1,
        R.SECURITY_GROUP_RULES: 100,
    }


@pytest.mark.parametrize("document", [None, {}, {"compute": {}}])
def test_nothing_to_set_is_an_empty_result(document: object) -> None:
    assert parse_quota_values(document) == {}


def test_every_resource_of_the_catalogue_parses() -> None:
    document: dict[str, dict[str, int]] = {}
    for number, resource in enumerate(ALL):
        document.setdefault(resource.service.value, {})[resource.key] = number
    assert parse_quota_values(document) == {resource: n for n, resource in enumerate(ALL)}


def test_enum_keys_are_read_as_their_values() -> None:
    assert parse_quota_values({Service.COMPUTE: {"cores": 2}}) == {R.CORES: 2}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("4", 4), (" 4 ", 4), ("007", 7), ("0", 0), (str(MAX_QUOTA_VALUE), MAX_QUOTA_VALUE)],
)
def test_digit_strings_are_accepted(raw: str, expected: int) -> None:
    assert parse_quota_values({"compute": {"cores": raw}}) == {R.CORES: expected}


def test_the_largest_value_the_cloud_accepts_is_accepted() -> None:
    assert parse_quota_values({"compute": {"ram": MAX_QUOTA_VALUE}}) == {R.RAM: MAX_QUOTA_VALUE}


BAD_VALUES: list[object] = [
    True,
    False,
    2.0,
    2.5,
    -1,
    -100,
    MAX_QUOTA_VALUE + 1,
    10**30,
    None,
    "",
    "  ",
    "abc",
    "-1",
    "+1",
    "1.0",
    "1e3",
    "0x10",
    "1_000",
    "²",  # isdigit() is True, int() refuses it
    "١٢",  # Arabic-Indic digits: int() reads them, an operator would not mean them
    "9" * 5000,  # past Python's int() digit limit
    str(MAX_QUOTA_VALUE + 1),
    [1],
    {"value": 1},
    b"1",
]


@pytest.mark.parametrize("raw", BAD_VALUES, ids=repr)
def test_a_bad_value_names_its_field(raw: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_quota_values({"compute": {"instances": 1, "cores": raw}})
    assert caught.value.field == "values.compute.cores"
    assert str(caught.value).startswith("values.compute.cores: ")


def test_a_negative_value_says_so() -> None:
    with pytest.raises(ValidationError, match="must not be negative, got -1"):
        parse_quota_values({"network": {"port": -1}})


def test_a_value_above_the_cloud_maximum_says_so() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_QUOTA_VALUE}"):
        parse_quota_values({"compute": {"ram": MAX_QUOTA_VALUE + 1}})


@pytest.mark.parametrize(
    ("document", "field", "hint"),
    [
        ("compute: 2", "values", "mapping"),
        ([{"compute": {}}], "values", "mapping"),
        (3, "values", "mapping"),
        ({"compute": 3}, "values.compute", "mapping of resource"),
        ({"compute": None}, "values.compute", "mapping of resource"),
        ({"compute": [1, 2]}, "values.compute", "mapping of resource"),
        ({"storage": {"volumes": 1}}, "values.storage", "compute, block_storage, network"),
        ({"": {}}, "values.", "unknown service"),
        ({"Compute": {"cores": 1}}, "values.Compute", "unknown service"),
        ({"compute": {"vcpus": 1}}, "values.compute.vcpus", "instances, cores, ram"),
        ({"network": {"instances": 1}}, "values.network.instances", "unknown resource"),
        ({"block_storage": {"floatingip": 1}}, "values.block_storage.floatingip", "volumes, gigabytes"),
        ({"compute": {"compute.cores": 1}}, "values.compute.compute.cores", "unknown resource"),
    ],
)
def test_a_bad_shape_names_its_field(document: object, field: str, hint: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_quota_values(document)
    assert caught.value.field == field
    assert hint in caught.value.message


def test_the_field_prefix_is_the_callers() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_quota_values({"compute": {"cores": -2}}, "quotas.caps")
    assert caught.value.field == "quotas.caps.compute.cores"


def test_unknown_resource_lists_only_its_services_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_quota_values({"network": {"cores": 1}})
    assert "floatingip" in caught.value.message and "instances" not in caught.value.message


# -- quota_document --------------------------------------------------------------------------------


def test_quota_document_nests_by_service_in_catalogue_order() -> None:
    document = quota_document({R.FLOATING_IPS: 1, R.CORES: 2, R.VOLUMES: 3, R.INSTANCES: 4})
    assert document == {
        "compute": {"instances": 4, "cores": 2},
        "block_storage": {"volumes": 3},
        "network": {"floatingip": 1},
    }
    assert list(document) == ["compute", "block_storage", "network"]
    assert list(document["compute"]) == ["instances", "cores"]


def test_an_empty_quota_is_an_empty_document() -> None:
    assert quota_document({}) == {}


@PROPERTY
@given(st.dictionaries(st.sampled_from(ALL), st.integers(0, MAX_QUOTA_VALUE)))
def test_quota_document_round_trips(quota: dict[Resource, int]) -> None:
    assert parse_quota_values(quota_document(quota)) == quota


# -- plan_quota: each branch -----------------------------------------------------------------------


def only(plan: QuotaPlan) -> ResourceChange:
    (change,) = plan.changes
    return change


def test_equal_limits_are_unchanged() -> None:
    change = only(plan_quota({R.CORES: 4}, {R.CORES: 4}))
    assert change == ResourceChange(R.CORES, 4, 4, 4, None, ChangeAction.UNCHANGED)


def test_a_raise_is_applied_without_usage() -> None:
    change = only(plan_quota({R.CORES: 2}, {R.CORES: 8}))
    assert change == ResourceChange(R.CORES, 2, 8, 8, None, ChangeAction.INCREASE)


def test_a_cut_that_usage_allows_is_applied() -> None:
    change = only(plan_quota({R.CORES: 8}, {R.CORES: 2}, {R.CORES: 2}))
    assert change == ResourceChange(R.CORES, 8, 2, 2, 2, ChangeAction.DECREASE)


def test_a_cut_below_usage_stops_at_the_usage_and_is_pending() -> None:
    change = only(plan_quota({R.CORES: 8}, {R.CORES: 2}, {R.CORES: 5}))
    assert change == ResourceChange(R.CORES, 8, 2, 5, 5, ChangeAction.PENDING)


def test_a_cut_with_unknown_usage_changes_nothing_and_is_pending() -> None:
    change = only(plan_quota({R.CORES: 8}, {R.CORES: 2}, {R.RAM: 0}))
    assert change == ResourceChange(R.CORES, 8, 2, 8, None, ChangeAction.PENDING)
    assert only(plan_quota({R.CORES: 8}, {R.CORES: 2}, None)).action is ChangeAction.PENDING


def test_an_unlimited_limit_is_cut_to_the_desired_value_when_usage_allows() -> None:
    change = only(plan_quota({R.CORES: UNLIMITED}, {R.CORES: 4}, {R.CORES: 1}))
    assert change == ResourceChange(R.CORES, UNLIMITED, 4, 4, 1, ChangeAction.DECREASE)


def test_an_unlimited_limit_is_cut_to_the_usage_when_usage_is_above() -> None:
    change = only(plan_quota({R.CORES: UNLIMITED}, {R.CORES: 4}, {R.CORES: 9}))
    assert change == ResourceChange(R.CORES, UNLIMITED, 4, 9, 9, ChangeAction.PENDING)


def test_an_unlimited_limit_with_unknown_usage_stays_unlimited() -> None:
    change = only(plan_quota({R.CORES: UNLIMITED}, {R.CORES: 4}))
    assert change == ResourceChange(R.CORES, UNLIMITED, 4, UNLIMITED, None, ChangeAction.PENDING)


def test_a_limit_the_cloud_does_not_report_counts_as_unlimited() -> None:
    change = only(plan_quota({}, {R.CORES: 4}, {R.CORES: 0}))
    assert change == ResourceChange(R.CORES, UNLIMITED, 4, 4, 0, ChangeAction.DECREASE)


def test_a_limit_lowered_outside_below_usage_is_never_raised_back() -> None:
    # someone set 3 by hand while 5 are used; we want 2: writing 5 would be a raise
    change = only(plan_quota({R.CORES: 3}, {R.CORES: 2}, {R.CORES: 5}))
    assert change == ResourceChange(R.CORES, 3, 2, 3, 5, ChangeAction.PENDING)
    assert change.target == change.current


def test_only_desired_resources_are_planned_in_catalogue_order() -> None:
    plan = plan_quota(
        {R.CORES: 1, R.INSTANCES: 1, R.PORTS: 5}, {R.FLOATING_IPS: 0, R.CORES: 1, R.INSTANCES: 2}
    )
    assert [c.resource for c in plan.changes] == [R.INSTANCES, R.CORES, R.FLOATING_IPS]


def test_usage_is_recorded_on_every_change_it_is_known_for() -> None:
    plan = plan_quota({R.CORES: 1, R.RAM: 1}, {R.CORES: 1, R.RAM: 2}, {R.CORES: 1, R.RAM: 1})
    assert [c.in_use for c in plan.changes] == [1, 1]


# -- plan_quota: every combination of a small grid ---------------------------------------------------

LIMITS = (UNLIMITED, 0, 1, 2, 3, 4)
WANTS = (0, 1, 2, 3, 4)
USAGES = (None, 0, 1, 2, 3, 4, 5)
GRID = list(itertools.product(LIMITS, WANTS, USAGES))


def plan_one(have: int, want: int, used: int | None, resource: Resource = R.CORES) -> ResourceChange:
    return only(plan_quota({resource: have}, {resource: want}, None if used is None else {resource: used}))


@pytest.mark.parametrize(("have", "want", "used"), GRID)
def test_plan_invariants_on_the_grid(have: int, want: int, used: int | None) -> None:
    change = plan_one(have, want, used)
    assert (change.resource, change.current, change.desired, change.in_use) == (R.CORES, have, want, used)
    is_cut = have == UNLIMITED or want < have
    # the limit never goes below what is wanted, and a cut never raises the limit
    assert effective(change.target) >= want
    if is_cut:
        assert effective(change.target) <= effective(have)
    # the desired value is written exactly when usage allows it
    usage_allows = not is_cut or (used is not None and used <= want)
    assert (change.target == want) == usage_allows or (have == want)
    # a cut never goes below usage, unless the cloud's limit already is below it (never raised back)
    if is_cut and used is not None:
        assert effective(change.target) >= min(used, effective(have))
    # the action agrees with the numbers
    expected_action = (
        ChangeAction.UNCHANGED
        if want == have
        else ChangeAction.INCREASE
        if not is_cut
        else ChangeAction.DECREASE
        if usage_allows
        else ChangeAction.PENDING
    )
    assert change.action is expected_action
    if change.action is ChangeAction.PENDING:
        assert change.target == (have if used is None else used if have == UNLIMITED else min(used, have))
    plan = QuotaPlan((change,))
    assert plan.writes == ({Service.COMPUTE: {R.CORES: change.target}} if change.target != have else {})


@pytest.mark.parametrize(("have", "want", "used"), GRID)
def test_planning_again_after_writing_changes_nothing(have: int, want: int, used: int | None) -> None:
    first = plan_one(have, want, used)
    second = plan_one(first.target, want, used)
    assert second.target == first.target
    assert QuotaPlan((second,)).is_noop
    if first.action is ChangeAction.PENDING:
        assert second.action is ChangeAction.PENDING
    else:
        assert second.action is ChangeAction.UNCHANGED


def test_the_grid_covers_every_action() -> None:
    assert {plan_one(*point).action for point in GRID} == set(ChangeAction)


# -- plan_quota: whole quotas ------------------------------------------------------------------------

limits = st.dictionaries(st.sampled_from(ALL), st.sampled_from(LIMITS))
wants = st.dictionaries(st.sampled_from(ALL), st.sampled_from(WANTS))
usages = st.dictionaries(st.sampled_from(ALL), st.integers(0, 5))


@PROPERTY
@given(current=limits, desired=wants, in_use=usages)
def test_whole_plans_keep_the_per_resource_invariants(
    current: dict[Resource, int], desired: dict[Resource, int], in_use: dict[Resource, int]
) -> None:
    plan = plan_quota(current, desired, in_use)
    assert [c.resource for c in plan.changes] == [r for r in ALL if r in desired]
    for change in plan.changes:
        r = change.resource
        assert change == plan_one(current.get(r, UNLIMITED), desired[r], in_use.get(r), r)
    written = {r: v for per_service in plan.writes.values() for r, v in per_service.items()}
    assert written == {c.resource: c.target for c in plan.changes if c.target != c.current}
    for service, per_service in plan.writes.items():
        assert per_service and all(r.service is service for r in per_service)
    assert plan.pending == tuple(c for c in plan.changes if c.action is ChangeAction.PENDING)
    assert plan.is_noop == (not written)

    applied = {**current, **written}
    again = plan_quota(applied, desired, in_use)
    assert again.is_noop
    assert {c.resource: c.target for c in again.pending} == {c.resource: c.target for c in plan.pending}
    assert all(c.action is ChangeAction.UNCHANGED for c in again.changes if c not in again.pending)


@PROPERTY
@given(current=limits, desired=wants, in_use=usages)
def test_usage_of_other_services_is_not_needed(
    current: dict[Resource, int], desired: dict[Resource, int], in_use: dict[Resource, int]
) -> None:
    needed = services_needing_usage(current, desired)
    partial = {r: v for r, v in in_use.items() if r.service in needed}

    def decisions(plan: QuotaPlan) -> list[tuple[Resource, int, ChangeAction]]:
        return [(c.resource, c.target, c.action) for c in plan.changes]

    assert decisions(plan_quota(current, desired, partial)) == decisions(plan_quota(current, desired, in_use))
    cut_services = {
        r.service
        for r, want in desired.items()
        if want != current.get(r, UNLIMITED)
        and (current.get(r, UNLIMITED) == UNLIMITED or want < current.get(r, UNLIMITED))
    }
    assert needed == cut_services


# -- services_needing_usage --------------------------------------------------------------------------


def test_only_services_with_a_cut_need_usage() -> None:
    current = {R.CORES: 4, R.VOLUMES: 1, R.PORTS: 10}
    desired = {R.CORES: 8, R.VOLUMES: 0, R.PORTS: 10}
    assert services_needing_usage(current, desired) == {Service.BLOCK_STORAGE}


def test_unreported_and_unlimited_limits_need_usage() -> None:
    assert services_needing_usage({}, {R.PORTS: 5}) == {Service.NETWORK}
    assert services_needing_usage({R.CORES: UNLIMITED}, {R.CORES: 5}) == {Service.COMPUTE}


def test_no_cut_needs_no_usage() -> None:
    assert services_needing_usage({R.CORES: 1, R.RAM: 5}, {R.CORES: 1, R.RAM: 6}) == set()
    assert services_needing_usage({}, {}) == set()


# -- QuotaPlan ---------------------------------------------------------------------------------------


def change(resource: Resource, current: int, target: int, action: ChangeAction) -> ResourceChange:
    return ResourceChange(resource, current, target, target, None, action)


def test_an_empty_plan_is_a_noop() -> None:
    plan = QuotaPlan(())
    assert (plan.writes, plan.pending, plan.is_noop, plan.outcome) == ({}, (), True, ProjectOutcome.UNCHANGED)


def test_writes_group_by_service_and_leave_unchanged_out() -> None:
    plan = QuotaPlan(
        (
            change(R.INSTANCES, 1, 2, ChangeAction.INCREASE),
            change(R.CORES, 4, 4, ChangeAction.UNCHANGED),
            change(R.PORTS, 10, 5, ChangeAction.DECREASE),
        )
    )
    assert plan.writes == {Service.COMPUTE: {R.INSTANCES: 2}, Service.NETWORK: {R.PORTS: 5}}
    assert not plan.is_noop
    assert plan.outcome is ProjectOutcome.UPDATED


def test_a_pending_cut_makes_the_outcome_pending_even_with_writes() -> None:
    pending = ResourceChange(R.CORES, 8, 2, 5, 5, ChangeAction.PENDING)
    plan = QuotaPlan((change(R.INSTANCES, 1, 2, ChangeAction.INCREASE), pending))
    assert plan.pending == (pending,)
    assert plan.outcome is ProjectOutcome.PENDING
    assert plan.writes == {Service.COMPUTE: {R.INSTANCES: 2, R.CORES: 5}}


def test_a_pending_cut_that_writes_nothing_is_a_noop_but_pending() -> None:
    plan = plan_quota({R.CORES: 8}, {R.CORES: 2})
    assert plan.is_noop
    assert plan.outcome is ProjectOutcome.PENDING


def test_unchanged_plans_say_so() -> None:
    plan = plan_quota({R.CORES: 8, R.RAM: 1}, {R.CORES: 8, R.RAM: 1})
    assert plan.is_noop and plan.outcome is ProjectOutcome.UNCHANGED


def test_plans_and_changes_are_immutable() -> None:
    plan = plan_quota({R.CORES: 8}, {R.CORES: 2})
    with pytest.raises(AttributeError):
        plan.changes[0].target = 0  # type: ignore[misc]


# -- drifted -----------------------------------------------------------------------------------------


def test_nothing_drifted_when_the_cloud_has_what_was_written() -> None:
    assert drifted({R.CORES: 4, R.RAM: 2048, R.PORTS: 9}, {R.CORES: 4, R.RAM: 2048}) == {}


def test_a_changed_limit_has_drifted() -> None:
    assert drifted({R.CORES: 16, R.RAM: 2048}, {R.CORES: 4, R.RAM: 2048}) == {R.CORES: (4, 16)}


def test_a_limit_the_cloud_no_longer_reports_counts_as_unlimited() -> None:
    assert drifted({}, {R.CORES: 4}) == {R.CORES: (4, UNLIMITED)}
    assert drifted({}, {R.CORES: UNLIMITED}) == {}


def test_limits_never_written_do_not_drift() -> None:
    assert drifted({R.CORES: 4}, {}) == {}


@PROPERTY
@given(current=limits, written=limits)
def test_drift_is_exactly_the_differences(
    current: Mapping[Resource, int], written: Mapping[Resource, int]
) -> None:
    result = drifted(current, written)
    for resource, value in written.items():
        now = current.get(resource, UNLIMITED)
        assert (resource in result) == (now != value)
        if resource in result:
            assert result[resource] == (value, now)
    assert set(result) <= set(written)
