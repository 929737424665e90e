"""The overview (instances by status per provider and region, quota usage, running jobs, audit events)
and the charts page (quota use per course, cost per project over time, export throughput)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from stackyard.api.quota_schemas import JobRead
from stackyard.cloud.models import Instance
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import CloudError, NotFound, StackyardError
from stackyard.exports.service import EXPORT_JOB
from stackyard.jobs.models import JobState
from stackyard.jobs.repository import JobRepository
from stackyard.pricing.service import PricingService
from stackyard.providers.base import InstanceQuery, Provider, UsageProvider
from stackyard.quotas.entities import AuditEvent
from stackyard.quotas.models import Resource, Service
from stackyard.quotas.service import EnrollmentService
from stackyard.web.charts import Series, bar_chart, grouped_bar_chart, line_chart
from stackyard.web.deps import SignedIn, Viewer
from stackyard.web.render import UiRoute, render
from stackyard.web.routes.servers import pick_provider

router = APIRouter(route_class=UiRoute, include_in_schema=False)

MAX_INSTANCES = 1000  # per region on the overview; beyond that the counts say "at least"
PAGE = 500
OVERVIEW_QUOTAS = (
    Resource.INSTANCES,
    Resource.CORES,
    Resource.RAM,
    Resource.VOLUMES,
    Resource.GIGABYTES,
    Resource.FLOATING_IPS,
    Resource.PORTS,
)
COST_DAYS = 7
COST_PROJECTS = 3


def all_instances(provider: Provider, viewer: Viewer, region: str | None) -> tuple[list[Instance], bool]:
    """Up to MAX_INSTANCES instances the viewer may see; True when there were more."""
    found: list[Instance] = []
    marker = None
    while len(found) < MAX_INSTANCES:
        page = provider.list_instances(viewer.scope, InstanceQuery(region=region, limit=PAGE, marker=marker))
        found.extend(page.items)
        marker = page.next_marker
        if marker is None:
            return found, False
    return found, True


def _regions(viewer: Viewer) -> list[dict[str, object]]:
    shown: list[dict[str, object]] = []
    for provider in viewer.state.providers.values():
        try:
            regions: list[str | None] = [r.id for r in provider.regions()] or [provider.default_region()]
        except StackyardError as exc:
            shown.append({"provider": provider.name, "region": "-", "error": str(exc)})
            continue
        for region in regions:
            try:
                instances, more = all_instances(provider, viewer, region)
            except StackyardError as exc:
                shown.append({"provider": provider.name, "region": region, "error": str(exc)})
                continue
            counts = Counter(i.status.value for i in instances)
            shown.append(
                {
                    "provider": provider.name,
                    "region": region or "-",
                    "total": len(instances),
                    "more": more,
                    "chart": bar_chart(
                        f"Instances by status, {provider.name} {region or ''}",
                        sorted(counts.items()),
                        width=340,
                    ),
                    "error": None,
                }
            )
    return shown


def _quota(viewer: Viewer) -> tuple[list[dict[str, object]], str | None]:
    project_id = viewer.principal.project_id
    if project_id is None:
        return [], None
    try:
        readings = viewer.state.quotas.tasks.applier.read_current(project_id)
    except (CloudError, StackyardError) as exc:
        return [], str(exc)
    rows: list[dict[str, object]] = []
    for resource in OVERVIEW_QUOTAS:
        reading = readings.get(Service(resource.service))
        if reading is None:
            continue
        rows.append(
            {
                "label": resource.key.replace("_", " ") + (" (MiB)" if resource is Resource.RAM else ""),
                "limit": reading.limits.get(resource.key),
                "used": (reading.in_use or {}).get(resource.key, 0),
            }
        )
    return rows, None


def _audit(viewer: Viewer) -> list[AuditEvent]:
    state = viewer.state
    with state.sessions() as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor="")
        if viewer.is_admin:
            return service.repository.audit(limit=10)
        mine = service.repository.students_of(
            project_id=viewer.principal.project_id, user_id=viewer.principal.subject
        )
        events = [e for s in mine for e in service.repository.audit(student_id=s.id, limit=10)]
    return sorted(events, key=lambda e: e.id, reverse=True)[:10]


def _active_jobs(viewer: Viewer) -> list[JobRead]:
    with viewer.state.sessions() as session:
        repository = JobRepository(session)
        jobs = repository.list_jobs(state=JobState.RUNNING, limit=20) + repository.list_jobs(
            state=JobState.QUEUED, limit=20
        )
    return [
        JobRead.of(j, with_result=False)
        for j in jobs
        if viewer.is_admin or j.created_by == viewer.principal.subject
    ]


@router.get("/ui/", response_class=HTMLResponse)
def overview(request: Request, viewer: SignedIn) -> HTMLResponse:
    quota, quota_error = _quota(viewer)
    return render(
        request,
        "overview.html",
        {
            "nav": "overview",
            "regions": _regions(viewer),
            "quota": quota,
            "quota_error": quota_error,
            "jobs": _active_jobs(viewer),
            "audit": _audit(viewer),
        },
    )


# -- charts --------------------------------------------------------------------------------------------


def _course_usage(viewer: Viewer, instances: list[Instance]) -> Markup | None:
    """Cores and instances granted by each course's profile to its enrolled students, and in use now
    in those students' projects (from the one instance listing the page already made)."""
    if not viewer.is_admin:
        return None
    state = viewer.state
    flavors_by_project: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        flavors_by_project[instance.project_id].append(instance)
    labels: list[str] = []
    granted: list[float] = []
    used: list[float] = []
    with transaction(state.sessions) as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor="")
        for course in service.repository.courses()[:15]:
            student_ids = service.repository.enrolled_in(course.id)
            if not student_ids:
                continue
            profile = service.profile(course.profile)
            students = service.repository.students(ids=student_ids)
            projects = {s.keystone_project_id for s in students if s.keystone_project_id}
            labels.append(f"{course.code} {course.term}")
            granted.append(float(profile.values.get(Resource.CORES, 0) * len(student_ids)))
            used.append(float(sum(i.flavor.vcpus for p in projects for i in flavors_by_project.get(p, []))))
    if not labels:
        return None
    return grouped_bar_chart(
        "vCPUs granted by each course and in use by its students",
        labels,
        [Series("cores granted", granted), Series("cores in use", used)],
    )


def _cost_chart(viewer: Viewer, provider: Provider, projects: list[str]) -> tuple[Markup | None, str | None]:
    if not isinstance(provider, UsageProvider) or not projects:
        return None, None
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=COST_DAYS - 1 - i) for i in range(COST_DAYS)]
    series: list[Series] = []
    currency = ""
    try:
        with transaction(viewer.state.sessions) as session:
            pricing = PricingService(session)
            for project_id in projects:
                totals = []
                for day in days:
                    end = min(day + timedelta(days=1), utcnow())
                    usages = provider.project_usage(viewer.scope, project_id, day, end)
                    report = pricing.project_report(usages, provider.default_region(), day, end)
                    currency = report.currency
                    totals.append(float(report.total))
                series.append(Series(project_id[:8], totals))
    except (NotFound, CloudError, StackyardError) as exc:
        return None, str(exc)
    labels = [d.strftime("%m-%d") for d in days]
    return line_chart(f"Cost per project per day ({currency})", labels, series, unit=f" {currency}"), None


def _throughput(viewer: Viewer) -> Markup | None:
    with viewer.state.sessions() as session:
        jobs = JobRepository(session).list_jobs(kinds=[EXPORT_JOB], state=JobState.SUCCEEDED, limit=20)
    items: list[tuple[str, float]] = []
    for job in reversed(jobs):
        if not (viewer.is_admin or job.created_by == viewer.principal.subject):
            continue
        if job.started_at is None or job.finished_at is None or not job.progress_total:
            continue
        seconds = max((job.finished_at - job.started_at).total_seconds(), 0.001)
        label = f"{job.created_at.strftime('%m-%d %H:%M')} {job.subject[:8] if job.subject else ''}"
        items.append((label, job.progress_total / seconds / (1024 * 1024)))
    if not items:
        return None
    return bar_chart("Export throughput (start to finish, snapshot included)", items, unit=" MiB/s")


@router.get("/ui/charts", response_class=HTMLResponse)
def charts(
    request: Request,
    viewer: SignedIn,
    project: Annotated[list[str] | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    provider = pick_provider(viewer.state, None)
    instances, _ = all_instances(provider, viewer, None)
    if viewer.is_admin:
        busiest = [p for p, _ in Counter(i.project_id for i in instances).most_common(COST_PROJECTS)]
        projects = list(project or busiest)[:COST_PROJECTS]
    else:
        projects = [viewer.principal.project_id] if viewer.principal.project_id else []
    cost, cost_error = _cost_chart(viewer, provider, projects)
    return render(
        request,
        "charts.html",
        {
            "nav": "overview",
            "course_chart": _course_usage(viewer, instances),
            "cost_chart": cost,
            "cost_error": cost_error,
            "projects": projects,
            "throughput_chart": _throughput(viewer),
        },
    )
