"""Quotas by enrollment end to end in the library: PostgreSQL, the job runner and the devcloud's
Nova, Cinder and Neutron (project creation, enroll, drop, pending cuts, expiry, reclamation, drift,
an unavailable cloud, concurrent enrollments)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import openstack.connection
import pytest
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.retry import RetryPolicy
from stackyard.cloud.session import open_session
from stackyard.db.base import utcnow
from stackyard.db.engine import make_engine, session_factory, transaction
from stackyard.db.migrate import upgrade
from stackyard.devcloud.access import Credentials
from stackyard.devcloud.launcher import Devcloud
from stackyard.jobs.models import Job, JobState
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobRunner
from stackyard.quotas.models import AuditReason, ProjectOutcome, Resource
from stackyard.quotas.policy import DEFAULT_BASELINE, QuotaPolicy
from stackyard.quotas.reclaim import ReclaimAction
from stackyard.quotas.reconcile import ReconcileFilter
from stackyard.quotas.repository import QuotaRepository
from stackyard.quotas.runtime import QuotaRuntime, build_quota_runtime
from stackyard.quotas.service import CourseCreate, EnrollmentService, StudentCreate
from support.clouds import sdk_connection
from support.faultproxy import FaultPlan, FaultProxy, devcloud_upstreams
from support.postgres import temporary_database

pytestmark = pytest.mark.devcloud

RUN = uuid.uuid4().hex[:6]
LAB = {  # the profile of the test courses: what one course adds
    Resource.INSTANCES: 2,
    Resource.CORES: 2,
    Resource.RAM: 1024,
    Resource.VOLUMES: 1,
    Resource.GIGABYTES: 5,
    Resource.PORTS: 4,
    Resource.FLOATING_IPS: 1,
}
BOOT_TIMEOUT = 300
CONVERGE_TIMEOUT = 90


@pytest.fixture(scope="module")
def sessions() -> Iterator[sessionmaker[Session]]:
    with temporary_database("stackyard_quotas") as url:
        engine = make_engine(url)
        upgrade(engine)
        yield session_factory(engine)
        engine.dispose()


@pytest.fixture(scope="module")
def policy() -> QuotaPolicy:
    return QuotaPolicy(project_pattern=f"qt{RUN}-{{student_number}}", reduction_grace=timedelta(days=7))


@pytest.fixture(scope="module")
def runtime(
    sessions: sessionmaker[Session],
    admin_credentials: Credentials,
    admin_conn: openstack.connection.Connection,
    policy: QuotaPolicy,
) -> Iterator[QuotaRuntime]:
    cloud = open_session(sdk_connection(admin_credentials), name="devcloud")
    yield build_quota_runtime(sessions, cloud, policy)
    # Every project the tests made, found from the database, is deleted (servers first).
    with sessions() as session:
        projects = [s.keystone_project_id for s in QuotaRepository(session).students(include_deleted=True)]
    for project_id in filter(None, projects):
        for server in admin_conn.compute.servers(all_projects=True, project_id=project_id):
            admin_conn.compute.delete_server(server.id)
        admin_conn.identity.delete_project(project_id, ignore_missing=True)
    cloud.close()


@pytest.fixture(scope="module")
def runner(sessions: sessionmaker[Session], runtime: QuotaRuntime) -> JobRunner:
    return JobRunner(sessions, runtime.tasks.handlers(), backoff_initial=0.2, backoff_cap=2.0)


@dataclass
class World:
    sessions: sessionmaker[Session]
    policy: QuotaPolicy
    runner: JobRunner
    conn: openstack.connection.Connection

    def service(self, session: Session, *, now_offset: timedelta = timedelta()) -> EnrollmentService:
        return EnrollmentService(session, self.policy, now=utcnow() + now_offset, actor="tests")

    def do(self, action: Callable[[EnrollmentService], object]) -> object:
        with transaction(self.sessions) as session:
            return action(self.service(session))

    def course(self, profile: str = "lab", *, ends: date | None = None) -> str:
        code = f"C{uuid.uuid4().hex[:6]}"
        today = date.today()

        def create(service: EnrollmentService) -> str:
            return service.create_course(
                CourseCreate(
                    code,
                    "test",
                    f"course {code}",
                    today - timedelta(days=30),
                    ends or today + timedelta(days=60),
                    profile,
                )
            ).id

        return str(self.do(create))

    def student(self) -> str:
        number = f"s{uuid.uuid4().hex[:8]}"
        with transaction(self.sessions) as session:
            student, job = self.service(session).register_student(
                StudentCreate(number, "A Student", f"{number}@uni.example")
            )
        assert job is not None
        assert self.runner.run_one(job.id).state is JobState.SUCCEEDED, self.runner.get(job.id)
        return student.id

    def enroll(self, student_id: str, course_id: str) -> Job:
        with transaction(self.sessions) as session:
            _, job = self.service(session).enroll(student_id, course_id)
        assert job is not None
        return self.runner.run_one(job.id)

    def drop(self, student_id: str, course_id: str) -> Job:
        with transaction(self.sessions) as session:
            _, job = self.service(session).drop(student_id, course_id)
        assert job is not None
        return self.runner.run_one(job.id)

    def project_of(self, student_id: str) -> str:
        with self.sessions() as session:
            project = QuotaRepository(session).get_student(student_id).keystone_project_id
        assert project is not None
        return project

    def limits(self, student_id: str) -> dict[Resource, int]:
        """The cloud's limits, read independently of stackyard (openstacksdk as admin)."""
        project = self.project_of(student_id)
        compute = self.conn.compute.get_quota_set(project)
        volume = self.conn.block_storage.get_quota_set(project)
        network = self.conn.network.get_quota(project)
        return {
            Resource.INSTANCES: compute.instances,
            Resource.CORES: compute.cores,
            Resource.RAM: compute.ram,
            Resource.VOLUMES: volume.volumes,
            Resource.GIGABYTES: volume.gigabytes,
            Resource.PORTS: network.ports,
            Resource.FLOATING_IPS: network.floating_ips,
            Resource.SECURITY_GROUP_RULES: network.security_group_rules,
        }

    def drain(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Run due jobs until none is left (retries included)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.sessions() as session:
                open_jobs = [
                    j
                    for s in (JobState.QUEUED, JobState.RUNNING)
                    for j in JobRepository(session).list_jobs(state=s)
                ]
            if not open_jobs:
                return
            assert time.monotonic() < deadline, f"jobs did not finish: {open_jobs}"
            if not self.runner.run_due():
                time.sleep(0.2)


@pytest.fixture(scope="module")
def world(
    sessions: sessionmaker[Session],
    policy: QuotaPolicy,
    runner: JobRunner,
    admin_conn: openstack.connection.Connection,
) -> World:
    world = World(sessions, policy, runner, admin_conn)
    with transaction(sessions) as session:
        service = world.service(session)
        service.ensure_baseline()
        service.save_profile("lab", LAB, "a lab course")
    return world


CHECKED = (
    Resource.INSTANCES,
    Resource.CORES,
    Resource.RAM,
    Resource.VOLUMES,
    Resource.GIGABYTES,
    Resource.PORTS,
    Resource.FLOATING_IPS,
    Resource.SECURITY_GROUP_RULES,
)


def expected(courses: int) -> dict[Resource, int]:
    """baseline (the default one) + `courses` x LAB, for the resources `World.limits` reads."""
    return {r: DEFAULT_BASELINE[r] + courses * LAB.get(r, 0) for r in CHECKED}


def audit_writes(sessions: sessionmaker[Session], student_id: str) -> int:
    with sessions() as session:
        return sum(
            1
            for e in QuotaRepository(session).audit(student_id=student_id, limit=1000)
            if e.action == "quota.set"
        )


# -- enroll, drop ----------------------------------------------------------------------------------


def test_register_creates_the_project_and_applies_the_baseline(world: World, policy: QuotaPolicy) -> None:
    student_id = world.student()
    project = world.conn.identity.get_project(world.project_of(student_id))
    with world.sessions() as session:
        student = QuotaRepository(session).get_student(student_id)
    assert project.name == policy.project_name(student.student_number)
    assert world.limits(student_id) == expected(0)
    assert student.is_converged and student.applied_at is not None


def test_enroll_sets_the_sum_and_drop_reduces_it(world: World) -> None:
    student_id = world.student()
    first, second = world.course(), world.course()
    assert world.enroll(student_id, first).state is JobState.SUCCEEDED
    assert world.limits(student_id) == expected(1)
    assert world.enroll(student_id, second).state is JobState.SUCCEEDED
    assert world.limits(student_id) == expected(2)
    assert world.drop(student_id, first).state is JobState.SUCCEEDED
    assert world.limits(student_id) == expected(1)
    with world.sessions() as session:
        reasons = {
            e.reason for e in QuotaRepository(session).audit(student_id=student_id) if e.action == "quota.set"
        }
    assert {AuditReason.REGISTER, AuditReason.ENROLL, AuditReason.DROP} <= reasons


def test_applying_again_writes_nothing(world: World, runtime: QuotaRuntime) -> None:
    student_id = world.student()
    world.enroll(student_id, world.course())
    writes = audit_writes(world.sessions, student_id)
    result = runtime.tasks.applier.apply_student(student_id, actor="tests", reason=AuditReason.MANUAL)
    assert result.outcome is ProjectOutcome.UNCHANGED
    assert audit_writes(world.sessions, student_id) == writes


def test_ten_concurrent_enrollments_end_on_the_exact_sum(world: World) -> None:
    student_id = world.student()
    courses = [world.course() for _ in range(10)]
    barrier = threading.Barrier(len(courses))
    states: list[JobState] = []

    def enroll(course_id: str) -> None:
        barrier.wait()
        states.append(world.enroll(student_id, course_id).state)

    threads = [threading.Thread(target=enroll, args=(c,)) for c in courses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(states) == 10
    world.drain()
    assert world.limits(student_id) == expected(10)
    with world.sessions() as session:
        assert QuotaRepository(session).get_student(student_id).is_converged


# -- cuts below usage, reclamation -------------------------------------------------------------------


@pytest.fixture
def server_in(
    world: World, admin_credentials: Credentials, request: pytest.FixtureRequest
) -> Callable[[str], str]:
    """Boot an m1.tiny server in a student's project (as admin, given a role there); returns its id."""

    def boot(student_id: str) -> str:
        project_id = world.project_of(student_id)
        admin_user = world.conn.current_user_id
        role = world.conn.identity.find_role("admin", ignore_missing=False)
        world.conn.identity.assign_project_role_to_user(project_id, admin_user, role)
        project = world.conn.identity.get_project(project_id)
        conn = sdk_connection(admin_credentials, project=project.name)
        request.addfinalizer(conn.close)
        image = conn.image.find_image("devcloud-raw", ignore_missing=False)
        flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
        network = conn.network.find_network("private", ignore_missing=False)
        server = conn.compute.create_server(
            name=f"qt-{uuid.uuid4().hex[:6]}",
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": network.id}],
        )
        request.addfinalizer(lambda: world.conn.compute.delete_server(server.id, ignore_missing=True))
        conn.compute.wait_for_server(server, wait=BOOT_TIMEOUT)
        return str(server.id)

    return boot


def test_a_cut_below_usage_waits_then_applies_when_usage_falls(
    world: World, runtime: QuotaRuntime, server_in: Callable[[str], str]
) -> None:
    student_id = world.student()
    course = world.course()
    world.enroll(student_id, course)
    server_id = server_in(student_id)

    world.drop(student_id, course)
    limits = world.limits(student_id)
    assert limits[Resource.INSTANCES] == 1 and limits[Resource.CORES] == 1  # lowered only to the usage
    assert limits[Resource.VOLUMES] == 0  # nothing in use: cut at once
    with world.sessions() as session:
        pending = {c.resource: c for c in QuotaRepository(session).pending_cuts(student_id)}
    assert pending[Resource.INSTANCES].in_use == 1 and pending[Resource.INSTANCES].desired == 0
    assert Resource.VOLUMES not in pending

    world.conn.compute.delete_server(server_id)
    world.conn.compute.wait_for_delete(world.conn.compute.get_server(server_id), wait=BOOT_TIMEOUT)
    round_report = runtime.tasks.run_round()  # the scheduler's round re-applies students with pending cuts
    assert round_report.applies_queued >= 1
    world.drain()
    assert world.limits(student_id) == expected(0)
    with world.sessions() as session:
        assert QuotaRepository(session).pending_cuts(student_id) == []


def test_reclamation_dry_run_then_apply(
    world: World, runtime: QuotaRuntime, server_in: Callable[[str], str]
) -> None:
    student_id = world.student()
    course = world.course()
    world.enroll(student_id, course)
    server_id = server_in(student_id)
    world.drop(student_id, course)

    dry = runtime.tasks.reclaimer.reclaim(student_id, actor="tests", reason=AuditReason.RECLAIM, dry_run=True)
    assert [(s.action, s.target_id) for s in dry.plan.steps] == [
        (ReclaimAction.STOP, server_id),
        (ReclaimAction.DELETE_SERVER, server_id),
    ]
    assert world.conn.compute.get_server(server_id).status == "ACTIVE"  # a dry run touches nothing

    done = runtime.tasks.reclaimer.reclaim(
        student_id, actor="tests", reason=AuditReason.RECLAIM, dry_run=False
    )
    assert done.applied is not None
    assert world.conn.compute.find_server(server_id, ignore_missing=True) is None
    world.drain()
    with world.sessions() as session:
        actions = [
            e.action
            for e in QuotaRepository(session).audit(student_id=student_id, reason=AuditReason.RECLAIM)
        ]
    assert "reclaim.stop" in actions and "reclaim.delete_server" in actions


def test_removing_a_student_reclaims_and_zeroes_the_quota(
    world: World, runner: JobRunner, server_in: Callable[[str], str]
) -> None:
    student_id = world.student()
    world.enroll(student_id, world.course())
    server_id = server_in(student_id)
    with transaction(world.sessions) as session:
        _, job = world.service(session).remove_student(student_id)
    assert runner.run_one(job.id).state is JobState.SUCCEEDED, runner.get(job.id).error
    assert world.conn.compute.find_server(server_id, ignore_missing=True) is None
    limits = world.limits(student_id)
    # Everything reclamation frees is cut to zero; the project's default security group (and its
    # rules) still exists, so those limits stay at their usage, as pending cuts.
    assert all(limits[r] == 0 for r in CHECKED if r is not Resource.SECURITY_GROUP_RULES), limits
    with world.sessions() as session:
        pending = {c.resource for c in QuotaRepository(session).pending_cuts(student_id)}
    assert Resource.INSTANCES not in pending and Resource.SECURITY_GROUP_RULES in pending


# -- expiry, drift, an unavailable cloud ------------------------------------------------------------


def test_expiry_ends_enrollments_and_reduces_the_quota(world: World, policy: QuotaPolicy) -> None:
    student_id = world.student()
    world.enroll(student_id, world.course(ends=date.today()))
    assert world.limits(student_id) == expected(1)
    later = policy.enrollment_grace + timedelta(days=2)
    with transaction(world.sessions) as session:
        jobs = world.service(session, now_offset=later).expire()
    assert student_id in {j.subject for j in jobs}
    for job in jobs:  # queued "in the future" with the shifted clock: run them now
        assert world.runner.run_one(job.id).state is JobState.SUCCEEDED
    assert world.limits(student_id) == expected(0)
    with world.sessions() as session:
        statuses = {e.status.value for e in QuotaRepository(session).enrollments_of(student_id)}
    assert statuses == {"expired"}


def test_drift_is_reported_then_corrected(world: World, runtime: QuotaRuntime) -> None:
    student_id = world.student()
    world.enroll(student_id, world.course())
    project_id = world.project_of(student_id)
    world.conn.set_compute_quotas(project_id, instances=9)  # someone outside stackyard
    selection = ReconcileFilter(student_ids=(student_id,))

    plan = runtime.tasks.reconciler.run(selection, dry_run=True, actor="tests")
    (line,) = plan.results
    assert line.drift == {Resource.INSTANCES: (2, 9)}
    assert world.limits(student_id)[Resource.INSTANCES] == 9  # the dry run wrote nothing

    applied = runtime.tasks.reconciler.run(selection, dry_run=False, actor="tests")
    assert applied.results[0].outcome is ProjectOutcome.UPDATED
    assert world.limits(student_id) == expected(1)
    again = runtime.tasks.reconciler.run(selection, dry_run=False, actor="tests")
    assert again.results[0].outcome is ProjectOutcome.UNCHANGED and not again.results[0].drift


def test_an_unavailable_cloud_delays_the_quota_but_never_loses_it(
    world: World,
    sessions: sessionmaker[Session],
    policy: QuotaPolicy,
    devcloud: Devcloud,
    admin_credentials: Credentials,
) -> None:
    student_id = world.student()
    course = world.course()
    failing = FaultPlan(error_503=1.0, methods=frozenset({"PUT"}), max_consecutive=None)
    with FaultProxy(devcloud_upstreams(devcloud.ports), failing) as proxy:
        conn = openstack.connect(
            **proxy.clouds_entry(admin_credentials), load_yaml_config=False, load_envvars=False
        )
        cloud = open_session(
            conn, name="proxied", policy=RetryPolicy(attempts=2, initial=0.1, cap=0.2, deadline=3)
        )
        proxied = build_quota_runtime(sessions, cloud, policy)
        runner = JobRunner(sessions, proxied.tasks.handlers(), backoff_initial=0.2, backoff_cap=1.0)
        with transaction(sessions) as session:
            _, job = world.service(session).enroll(student_id, course)
        assert job is not None
        waited = runner.run_one(job.id)
        assert waited.state is JobState.QUEUED and waited.error, waited  # committed, queued for a retry
        assert world.limits(student_id) == expected(0)  # nothing applied yet

        proxy.set_plan(FaultPlan())  # the cloud is back
        deadline = time.monotonic() + CONVERGE_TIMEOUT
        while runner.get(job.id).state is not JobState.SUCCEEDED:
            assert time.monotonic() < deadline, runner.get(job.id)
            runner.run_due()
            time.sleep(0.2)
        cloud.close()
    assert world.limits(student_id) == expected(1)


def test_a_cut_pending_past_the_grace_period_runs_reclamation_once(
    world: World,
    sessions: sessionmaker[Session],
    policy: QuotaPolicy,
    admin_credentials: Credentials,
    server_in: Callable[[str], str],
) -> None:
    student_id = world.student()
    course = world.course()
    world.enroll(student_id, course)
    server_id = server_in(student_id)
    world.drop(student_id, course)  # instances 1 > 0: pending

    impatient = replace(policy, reduction_grace=timedelta(0))
    cloud = open_session(sdk_connection(admin_credentials), name="devcloud-grace")
    tasks = build_quota_runtime(sessions, cloud, impatient).tasks
    runner = JobRunner(sessions, tasks.handlers())
    first = tasks.run_round()
    assert first.reclaims_queued >= 1
    with sessions() as session:
        (job,) = JobRepository(session).list_jobs(kinds=["quota.reclaim"], subject=student_id)
    done = runner.run_one(job.id)
    assert done.state is JobState.SUCCEEDED, done.error
    assert world.conn.compute.find_server(server_id, ignore_missing=True) is None
    assert world.limits(student_id)[Resource.INSTANCES] == 0

    again = tasks.run_round()  # the cut is gone, and an episode is reclaimed once
    with sessions() as session:
        jobs = JobRepository(session).list_jobs(kinds=["quota.reclaim"], subject=student_id)
    assert len(jobs) == 1, (again, jobs)
    cloud.close()
