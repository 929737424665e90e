"""Students and courses (admins), a student's quota and enrollments, and a member's own view."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from stackyard.api.routes.students import run_now, visible_student
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import CloudError, Conflict, StackyardError, ValidationError
from stackyard.jobs.models import Job
from stackyard.providers.base import InstanceQuery
from stackyard.quotas import service as quota_service
from stackyard.quotas.entities import Student
from stackyard.quotas.models import Service, StudentStatus
from stackyard.quotas.service import EnrollmentService
from stackyard.web.deps import ActingAdmin, AdminViewer, SignedIn, Viewer
from stackyard.web.quota_view import quota_services
from stackyard.web.render import UiRoute, render
from stackyard.web.routes.servers import pick_provider

router = APIRouter(route_class=UiRoute, include_in_schema=False)
PAGE = 50


def _student_context(viewer: Viewer, student_id: str) -> dict[str, object]:
    """Everything a student's page shows, read as the API's routes read it."""
    state = viewer.state
    with transaction(state.sessions) as session:
        service = EnrollmentService(
            session, state.quotas.policy, now=utcnow(), actor=viewer.principal.subject
        )
        student = visible_student(service, viewer.principal, student_id)
        enrollments = service.enrollments(student.id)
        quota = service.desired(student.id)
        courses = service.repository.courses() if viewer.is_admin else []
    limits = in_use = None
    cloud_error = None
    if student.keystone_project_id is not None:
        try:
            readings = state.quotas.tasks.applier.read_current(student.keystone_project_id)
        except CloudError as exc:
            cloud_error = str(exc)
        else:
            limits = {Service(s): dict(r.limits) for s, r in readings.items()}
            in_use = {Service(s): dict(r.in_use or {}) for s, r in readings.items()}
    enrolled = {e.course_id for e in enrollments if e.status.value == "active"}
    return {
        "student": student,
        "enrollments": enrollments,
        "quota": quota,
        "services": quota_services(quota.desired, student.applied_quota, limits, in_use, quota.pending),
        "cloud_error": cloud_error,
        "open_courses": [c for c in courses if c.id not in enrolled],
    }


def _my_students(viewer: Viewer) -> list[Student]:
    with viewer.state.sessions() as session:
        service = EnrollmentService(session, viewer.state.quotas.policy, now=utcnow(), actor="")
        return service.repository.students_of(
            project_id=viewer.principal.project_id, user_id=viewer.principal.subject
        )


# -- students ------------------------------------------------------------------------------------------


@router.get("/ui/students", response_class=HTMLResponse)
def list_students(
    request: Request,
    viewer: AdminViewer,
    q: Annotated[str, Query(max_length=100)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    course: Annotated[str, Query(max_length=36)] = "",
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> HTMLResponse:
    state = viewer.state
    chosen_status = StudentStatus(status) if status in {s.value for s in StudentStatus} else None
    with transaction(state.sessions) as session:
        service = EnrollmentService(
            session, state.quotas.policy, now=utcnow(), actor=viewer.principal.subject
        )
        students = service.repository.students(
            search=q or None, status=chosen_status, course_id=course or None, limit=PAGE + 1, offset=offset
        )
        courses = service.repository.courses()
    params = {"q": q, "status": status, "course": course}
    base = {k: v for k, v in params.items() if v}
    return render(
        request,
        "people/students.html",
        {
            "nav": "students",
            "students": students[:PAGE],
            "filters": params,
            "statuses": [s.value for s in StudentStatus],
            "courses": courses,
            "next_link": "/ui/students?" + urlencode({**base, "offset": offset + PAGE})
            if len(students) > PAGE
            else None,
            "prev_link": "/ui/students?" + urlencode({**base, "offset": max(0, offset - PAGE)})
            if offset
            else None,
            "errors": {},
            "values": {"student_number": "", "name": "", "email": ""},
        },
    )


@router.post("/ui/students", response_class=HTMLResponse)
def register_student(
    request: Request,
    viewer: ActingAdmin,
    student_number: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=255)] = "",
    email: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    state = viewer.state
    errors: dict[str, str] = {}
    for field, value in (("student_number", student_number), ("name", name), ("email", email)):
        if not value.strip():
            errors[field] = "required"
    student = None
    job: Job | None = None
    if not errors:
        try:
            with transaction(state.sessions) as session:
                service = EnrollmentService(
                    session, state.quotas.policy, now=utcnow(), actor=viewer.principal.subject
                )
                student, job = service.register_student(
                    quota_service.StudentCreate(
                        student_number=student_number.strip(), name=name.strip(), email=email.strip()
                    )
                )
        except ValidationError as exc:
            errors[exc.field if exc.field in ("student_number", "name", "email") else "form"] = exc.message
        except Conflict as exc:  # the student number is taken
            errors["student_number"] = str(exc)
        except StackyardError as exc:
            errors["form"] = str(exc)
    if errors or student is None:
        return render(
            request,
            "people/students.html",
            {
                **_students_page_context(viewer),
                "errors": errors,
                "values": {"student_number": student_number, "name": name, "email": email},
            },
            status_code=422,
        )
    job = run_now(state, job)
    outcome = "queued" if job is not None and not job.state.is_final else "registered"
    return RedirectResponse(f"/ui/students/{student.id}?done={outcome}", status_code=303)


def _students_page_context(viewer: Viewer) -> dict[str, object]:
    with viewer.state.sessions() as session:
        service = EnrollmentService(session, viewer.state.quotas.policy, now=utcnow(), actor="")
        students = service.repository.students(limit=PAGE)
        courses = service.repository.courses()
    return {
        "nav": "students",
        "students": students,
        "filters": {"q": "", "status": "", "course": ""},
        "statuses": [s.value for s in StudentStatus],
        "courses": courses,
        "next_link": None,
        "prev_link": None,
    }


_DONE = {
    "registered": "Student registered; the project's quota is applied.",
    "enrolled": "Enrolled; the quota below is what the cloud has now.",
    "dropped": "Dropped; the quota below is what the cloud has now.",
    "queued": "Recorded; the cloud has not confirmed the quota yet (the job is queued and retried).",
}


@router.get("/ui/students/{student_id}", response_class=HTMLResponse)
def student_detail(request: Request, viewer: SignedIn, student_id: str, done: str = "") -> HTMLResponse:
    context = _student_context(viewer, student_id)
    context.update(nav="students" if viewer.is_admin else "me", done=_DONE.get(done), error=None)
    return render(request, "people/student.html", context)


def _change_enrollment(
    request: Request, viewer: Viewer, student_id: str, course_id: str, *, enroll: bool
) -> Response:
    state = viewer.state
    try:
        with transaction(state.sessions) as session:
            service = EnrollmentService(
                session, state.quotas.policy, now=utcnow(), actor=viewer.principal.subject
            )
            if enroll:
                _, job = service.enroll(student_id, course_id)
            else:
                _, job = service.drop(student_id, course_id)
    except (ValidationError, CloudError) as exc:  # already enrolled, course full or ended, unknown course
        context = _student_context(viewer, student_id)
        context.update(nav="students", done=None, error=str(exc))
        return render(request, "people/student.html", context, status_code=409)
    job = run_now(state, job)
    outcome = (
        "queued" if job is not None and not job.state.is_final else ("enrolled" if enroll else "dropped")
    )
    return RedirectResponse(f"/ui/students/{student_id}?done={outcome}", status_code=303)


@router.post("/ui/students/{student_id}/enroll", response_class=HTMLResponse)
def enroll(
    request: Request,
    viewer: ActingAdmin,
    student_id: str,
    course_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    if not course_id:
        context = _student_context(viewer, student_id)
        context.update(nav="students", done=None, error="course_id: choose a course")
        return render(request, "people/student.html", context, status_code=422)
    return _change_enrollment(request, viewer, student_id, course_id, enroll=True)


@router.post("/ui/students/{student_id}/drop", response_class=HTMLResponse)
def drop(
    request: Request, viewer: ActingAdmin, student_id: str, course_id: Annotated[str, Form(max_length=36)]
) -> Response:
    return _change_enrollment(request, viewer, student_id, course_id, enroll=False)


# -- courses -------------------------------------------------------------------------------------------


@router.get("/ui/courses", response_class=HTMLResponse)
def list_courses(
    request: Request,
    viewer: AdminViewer,
    q: Annotated[str, Query(max_length=100)] = "",
    term: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    state = viewer.state
    with transaction(state.sessions) as session:
        service = EnrollmentService(
            session, state.quotas.policy, now=utcnow(), actor=viewer.principal.subject
        )
        courses = service.repository.courses(term=term or None, search=q or None)
        counts = {c.id: service.repository.count_active(c.id) for c in courses}
    return render(
        request,
        "people/courses.html",
        {"nav": "courses", "courses": courses, "counts": counts, "filters": {"q": q, "term": term}},
    )


@router.get("/ui/courses/{course_id}", response_class=HTMLResponse)
def course_detail(request: Request, viewer: AdminViewer, course_id: str) -> HTMLResponse:
    state = viewer.state
    with transaction(state.sessions) as session:
        service = EnrollmentService(
            session, state.quotas.policy, now=utcnow(), actor=viewer.principal.subject
        )
        course = service.repository.get_course(course_id)
        profile = service.profile(course.profile)
        students = service.repository.students(course_id=course_id)
    return render(
        request,
        "people/course.html",
        {
            "nav": "courses",
            "course": course,
            "profile": profile,
            "profile_services": quota_services(profile.values, None, None, None),
            "students": students,
        },
    )


# -- a member's own view -------------------------------------------------------------------------------


@router.get("/ui/me", response_class=HTMLResponse)
def my_view(request: Request, viewer: SignedIn) -> HTMLResponse:
    mine = _my_students(viewer)
    records = [_student_context(viewer, s.id) for s in mine]
    provider = pick_provider(viewer.state, None)
    instances = list(provider.list_instances(viewer.scope, InstanceQuery(limit=50)).items)
    return render(
        request,
        "people/me.html",
        {"nav": "me", "records": records, "provider": provider, "instances": instances},
    )
