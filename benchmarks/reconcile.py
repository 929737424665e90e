"""Bulk quota reconciliation: stackyard vs a sequential openstacksdk loop vs a loop of `openstack quota set`.

Run: uv run python benchmarks/reconcile.py [--students 500] [--courses 12] [--concurrency 8]
     [--cli-sample 25] [--seed 7] [--keep]
Registers --students students (SQLite in a throwaway directory), each enrolled in 1-3 of --courses
random courses with random profiles, against the running devcloud (started if needed). Then, in one run:
  1. stackyard reconcile from scratch (creates the projects, writes every quota);
  2. again with nothing to change (reads only: must write nothing);
  3. 10% of the students change an enrollment, then `reconcile --changed-only` (only those students);
  4. another 10% change, then a full reconcile (reads every project: drift detection included);
  5. another 10% change, then a straightforward sequential openstacksdk loop brings every project to
     its desired quota (set_compute_quotas / set_volume_quotas / set_network_quotas per project);
  6. another 10% change, then a loop of `openstack quota set` commands on a sample of --cli-sample
     projects (each command is a process: measured per project and scaled to all of them).
Prints wall time and HTTP calls by method and service for each, and the ratios. Projects are named
bench-q-<n> and deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openstack
import openstack.connection
import yaml
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.session import open_session
from stackyard.db.base import utcnow
from stackyard.db.engine import make_engine, session_factory, transaction
from stackyard.db.migrate import upgrade
from stackyard.devcloud.access import Credentials, cloud_entry, credentials
from stackyard.devcloud.components import ALL
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root
from stackyard.quotas.models import EnrollmentStatus, Resource, Service
from stackyard.quotas.orm import StudentRecord
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.reconcile import ReconcileFilter, ReconcileReport
from stackyard.quotas.repository import QuotaRepository
from stackyard.quotas.runtime import build_quota_runtime
from stackyard.quotas.service import CourseCreate, EnrollmentService, StudentCreate

PATTERN = "bench-q-{student_number}"
PROFILES = {
    "bench-small": {Resource.INSTANCES: 1, Resource.CORES: 1, Resource.RAM: 1024},
    "bench-lab": {Resource.INSTANCES: 2, Resource.CORES: 4, Resource.RAM: 4096, Resource.GIGABYTES: 20},
    "bench-storage": {Resource.VOLUMES: 4, Resource.GIGABYTES: 100, Resource.SNAPSHOTS: 4},
    "bench-net": {Resource.FLOATING_IPS: 2, Resource.ROUTERS: 1, Resource.PORTS: 10},
    "bench-big": {Resource.INSTANCES: 4, Resource.CORES: 8, Resource.RAM: 16384, Resource.FLOATING_IPS: 1},
}
# `openstack quota set` option of each resource.
CLI_OPTIONS = {
    Resource.INSTANCES: "--instances",
    Resource.CORES: "--cores",
    Resource.RAM: "--ram",
    Resource.KEY_PAIRS: "--key-pairs",
    Resource.SERVER_GROUPS: "--server-groups",
    Resource.VOLUMES: "--volumes",
    Resource.GIGABYTES: "--gigabytes",
    Resource.SNAPSHOTS: "--snapshots",
    Resource.BACKUPS: "--backups",
    Resource.NETWORKS: "--networks",
    Resource.SUBNETS: "--subnets",
    Resource.PORTS: "--ports",
    Resource.ROUTERS: "--routers",
    Resource.FLOATING_IPS: "--floating-ips",
    Resource.SECURITY_GROUPS: "--secgroups",
    Resource.SECURITY_GROUP_RULES: "--secgroup-rules",
}
# openstacksdk's cloud-layer keyword of each network resource (it renames Neutron's keys).
SDK_NETWORK_KEYS = {
    Resource.NETWORKS: "networks",
    Resource.SUBNETS: "subnets",
    Resource.PORTS: "ports",
    Resource.ROUTERS: "routers",
    Resource.FLOATING_IPS: "floating_ips",
    Resource.SECURITY_GROUPS: "security_groups",
    Resource.SECURITY_GROUP_RULES: "security_group_rules",
}


@dataclass
class CallCounter:
    """HTTP requests seen by a keystoneauth session, by (method, service)."""

    services: dict[int, str]
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, response: Any, *args: object, **kwargs: object) -> None:
        port = int(response.url.split(":")[2].split("/")[0]) if response.url.count(":") >= 2 else 0
        with self.lock:
            self.counts[(response.request.method, self.services.get(port, str(port)))] += 1

    def attach(self, conn: openstack.connection.Connection) -> None:
        conn.session.session.hooks["response"].append(self.hook)

    @contextmanager
    def window(self) -> Iterator[Counter[tuple[str, str]]]:
        before = Counter(self.counts)
        seen: Counter[tuple[str, str]] = Counter()
        yield seen
        seen.update(self.counts - before)


@dataclass
class Measured:
    name: str
    seconds: float
    calls: Counter[tuple[str, str]]
    note: str = ""

    @property
    def writes(self) -> int:
        return sum(n for (method, _), n in self.calls.items() if method in ("PUT", "POST", "PATCH", "DELETE"))

    def line(self) -> str:
        by_method = Counter[str]()
        for (method, _), n in self.calls.items():
            by_method[method] += n
        methods = " ".join(f"{m} {n}" for m, n in sorted(by_method.items()))
        total = sum(self.calls.values())
        return f"{self.name:<52} {self.seconds:8.1f} s   {total:6d} calls ({methods}) {self.note}"


def devcloud_up() -> Devcloud:
    cloud = Devcloud(Layout(default_root()), report=lambda msg: print(f"devcloud: {msg}", file=sys.stderr))
    cloud.up(UpOptions(ALL))
    return cloud


def sdk(creds: Credentials) -> openstack.connection.Connection:
    return openstack.connect(**cloud_entry(creds), load_yaml_config=False, load_envvars=False)


def populate(
    sessions: sessionmaker[Session], policy: QuotaPolicy, students: int, courses: int, rng: random.Random
) -> None:
    today = date.today()
    with transaction(sessions) as session:
        service = EnrollmentService(session, policy, now=utcnow(), actor="bench", defer_applies=True)
        service.ensure_baseline()
        for name, values in PROFILES.items():
            service.save_profile(name, values)
        course_ids = [
            service.create_course(
                CourseCreate(
                    f"B{i:03d}",
                    "bench",
                    f"bench course {i}",
                    today - timedelta(days=30),
                    today + timedelta(days=90),
                    rng.choice(list(PROFILES)),
                )
            ).id
            for i in range(courses)
        ]
        for n in range(students):
            student, _ = service.register_student(
                StudentCreate(f"{n:05d}", f"Student {n}", f"s{n}@bench.example")
            )
            for course_id in rng.sample(course_ids, rng.randint(1, 3)):
                service.enroll(student.id, course_id)


def change_tenth(sessions: sessionmaker[Session], policy: QuotaPolicy, rng: random.Random) -> int:
    """10% of the students drop one of their courses or take one more (database only: no job)."""
    with transaction(sessions) as session:
        service = EnrollmentService(session, policy, now=utcnow(), actor="bench", defer_applies=True)
        repo = service.repository
        students = repo.students()
        course_ids = [c.id for c in repo.courses()]
        chosen = rng.sample(students, max(1, len(students) // 10))
        for student in chosen:
            active = [
                e.course_id for e in repo.enrollments_of(student.id) if e.status is EnrollmentStatus.ACTIVE
            ]
            if len(active) > 1 and rng.random() < 0.5:
                service.drop(student.id, rng.choice(active))
            else:
                free = [c for c in course_ids if c not in active]
                service.enroll(student.id, rng.choice(free))
        return len(chosen)


def desired_of_all(
    sessions: sessionmaker[Session], policy: QuotaPolicy
) -> list[tuple[str, dict[Resource, int]]]:
    with transaction(sessions) as session:
        service = EnrollmentService(session, policy, now=utcnow(), actor="bench")
        return [
            (str(s.keystone_project_id), service.desired(s.id).desired) for s in service.repository.students()
        ]


def mark_applied(sessions: sessionmaker[Session]) -> None:
    """After an outside loop wrote the quotas, stackyard's own bookkeeping is brought along (so the
    next stackyard run starts from the same footing); no cloud call."""
    with transaction(sessions) as session:
        session.execute(update(StudentRecord).values(applied_generation=StudentRecord.generation))


def sdk_loop(conn: openstack.connection.Connection, desired: list[tuple[str, dict[Resource, int]]]) -> None:
    for project_id, values in desired:
        conn.set_compute_quotas(
            project_id, **{r.key: v for r, v in values.items() if r.service is Service.COMPUTE}
        )
        conn.set_volume_quotas(
            project_id, **{r.key: v for r, v in values.items() if r.service is Service.BLOCK_STORAGE}
        )
        conn.set_network_quotas(
            project_id, **{SDK_NETWORK_KEYS[r]: v for r, v in values.items() if r.service is Service.NETWORK}
        )


def cli_loop(desired: list[tuple[str, dict[Resource, int]]], env: dict[str, str]) -> list[float]:
    times = []
    openstack_cli = shutil.which("openstack", path=str(Path(sys.executable).parent)) or "openstack"
    for project_id, values in desired:
        argv = [openstack_cli, "quota", "set"]
        for resource, value in values.items():
            argv += [CLI_OPTIONS[resource], str(value)]
        started = time.monotonic()
        subprocess.run([*argv, project_id], env=env, check=True, capture_output=True)
        times.append(time.monotonic() - started)
    return times


def cli_calls(desired: tuple[str, dict[Resource, int]], env: dict[str, str]) -> Counter[str]:
    """HTTP requests one `openstack quota set` makes, from its --debug log."""
    project_id, values = desired
    openstack_cli = shutil.which("openstack", path=str(Path(sys.executable).parent)) or "openstack"
    argv = [openstack_cli, "--debug", "quota", "set"]
    for resource, value in values.items():
        argv += [CLI_OPTIONS[resource], str(value)]
    done = subprocess.run([*argv, project_id], env=env, check=True, capture_output=True, text=True)
    methods: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        if "REQ: curl" in line and " -X " in line:
            methods[line.split(" -X ", 1)[1].split()[0]] += 1
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--courses", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--cli-sample", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="leave the bench-q-* projects in the devcloud")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    cloud = devcloud_up()
    admin = credentials(cloud, "admin")
    ports = cloud.ports
    services = {
        ports.keystone: "identity",
        ports.nova: "compute",
        ports.cinder: "volume",
        ports.neutron: "network",
    }
    workdir = Path(tempfile.mkdtemp(prefix="stackyard-bench-reconcile-"))
    engine = make_engine(f"sqlite:///{workdir / 'stackyard.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    policy = QuotaPolicy(project_pattern=PATTERN, concurrency=args.concurrency)
    print(f"populating {args.students} students in {args.courses} courses ...", file=sys.stderr)
    populate(sessions, policy, args.students, args.courses, rng)

    counter = CallCounter(services)
    conn = sdk(admin)
    counter.attach(conn)
    runtime = build_quota_runtime(sessions, open_session(conn, name="devcloud"), policy)
    results: list[Measured] = []

    def reconcile(name: str, selection: ReconcileFilter) -> ReconcileReport:
        with counter.window() as calls:
            started = time.monotonic()
            report = runtime.tasks.reconciler.run(selection, dry_run=False, actor="bench")
            seconds = time.monotonic() - started
        counts = report.counts
        failed = [r for r in report.results if r.error]
        assert not failed, failed[:3]
        results.append(Measured(name, seconds, calls, f"{counts}"))
        print(results[-1].line(), file=sys.stderr)
        return report

    try:
        reconcile("stackyard: from scratch (creates projects)", ReconcileFilter())
        reconcile("stackyard: nothing changed (full)", ReconcileFilter())
        changed = change_tenth(sessions, policy, rng)
        reconcile(f"stackyard: {changed} changed, --changed-only", ReconcileFilter(changed_only=True))
        changed = change_tenth(sessions, policy, rng)
        reconcile(f"stackyard: {changed} changed, full (drift check)", ReconcileFilter())

        changed = change_tenth(sessions, policy, rng)
        desired = desired_of_all(sessions, policy)
        loop_conn = sdk(admin)
        loop_counter = CallCounter(services)
        loop_counter.attach(loop_conn)
        with loop_counter.window() as calls:
            started = time.monotonic()
            sdk_loop(loop_conn, desired)
            seconds = time.monotonic() - started
        results.append(Measured(f"openstacksdk sequential loop: {changed} changed", seconds, calls))
        print(results[-1].line(), file=sys.stderr)
        mark_applied(sessions)

        changed = change_tenth(sessions, policy, rng)
        desired = desired_of_all(sessions, policy)
        clouds = workdir / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"bench": cloud_entry(admin)}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="bench")
        sample = desired[: args.cli_sample]
        times = cli_loop(sample, env)
        per_project = sum(times) / len(times)
        per_call = cli_calls(sample[0], env)
        scaled = Counter({(m, "all"): n * len(desired) for m, n in per_call.items()})
        results.append(
            Measured(
                f"openstack quota set loop: {changed} changed (x{len(desired)})",
                per_project * len(desired),
                scaled,
                f"(measured {len(sample)} commands, {per_project:.2f} s each, scaled to {len(desired)})",
            )
        )
        print(results[-1].line(), file=sys.stderr)
    finally:
        if not args.keep:
            print("deleting the bench-q-* projects ...", file=sys.stderr)
            with sessions() as session:
                projects = [s.keystone_project_id for s in QuotaRepository(session).students()]
            for project_id in filter(None, projects):
                conn.identity.delete_project(project_id, ignore_missing=True)
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    for measured in results:
        print(measured.line())
    incremental, full = results[2], results[3]
    sdk_run, cli_run = results[4], results[5]
    print()
    print(f"no-change run writes: {results[1].writes} (goal 0)")
    ratio = sdk_run.seconds / incremental.seconds
    print(f"sequential SDK loop / stackyard --changed-only: {ratio:.1f}x (goal >= 5x)")
    print(f"sequential SDK loop / stackyard full reconcile: {sdk_run.seconds / full.seconds:.1f}x")
    ratio = cli_run.seconds / incremental.seconds
    print(f"openstack CLI loop / stackyard --changed-only: {ratio:.1f}x (goal >= 50x)")
    print(f"openstack CLI loop / stackyard full reconcile: {cli_run.seconds / full.seconds:.1f}x")


if __name__ == "__main__":
    main()
