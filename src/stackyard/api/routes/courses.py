"""Courses and the quota profiles they grant; admins write, every authenticated caller reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from stackyard.api.deps import AdminPrincipal, CurrentPrincipal
from stackyard.api.quota_schemas import (
    CourseChange,
    CourseCreate,
    CourseDetail,
    CourseList,
    CourseRead,
    CourseUpdate,
    ProfileChange,
    ProfileList,
    ProfileRead,
    ProfileWrite,
)
from stackyard.api.routes.students import Enrollments
from stackyard.quotas import service as quota_service
from stackyard.quotas.models import parse_quota_values

router = APIRouter(tags=["courses"])
CourseId = Annotated[str, Path(min_length=1, max_length=36, description="Course id.")]
ProfileName = Annotated[str, Path(min_length=1, max_length=64, description="Profile name.")]


@router.get("/api/v1/courses", response_model=CourseList)
def list_courses(
    service: Enrollments,
    _principal: CurrentPrincipal,
    term: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=100, description="Matches code or name.")] = None,
) -> CourseList:
    return CourseList(items=[CourseRead.of(c) for c in service.repository.courses(term=term, search=q)])


@router.post("/api/v1/courses", response_model=CourseRead, status_code=201)
def create_course(
    body: CourseCreate, service: Enrollments, _admin: AdminPrincipal, response: Response
) -> CourseRead:
    course = service.create_course(
        quota_service.CourseCreate(
            code=body.code,
            term=body.term,
            name=body.name,
            start_date=body.start_date,
            end_date=body.end_date,
            profile=body.profile,
            max_enrollments=body.max_enrollments,
            reclamation=body.reclamation,
        )
    )
    response.headers["Location"] = f"/api/v1/courses/{course.id}"
    return CourseRead.of(course)


@router.get("/api/v1/courses/{course_id}", response_model=CourseDetail)
def get_course(course_id: CourseId, service: Enrollments, _principal: CurrentPrincipal) -> CourseDetail:
    course = service.repository.get_course(course_id)
    return CourseDetail(
        **CourseRead.of(course).model_dump(), enrolled=service.repository.count_active(course_id)
    )


@router.patch("/api/v1/courses/{course_id}", response_model=CourseChange)
def update_course(
    course_id: CourseId, body: CourseUpdate, service: Enrollments, _admin: AdminPrincipal
) -> CourseChange:
    """A changed profile re-applies the quota of every student enrolled (jobs, run by the runner)."""
    course, jobs = service.update_course(
        course_id,
        quota_service.CourseUpdate(
            name=body.name,
            start_date=body.start_date,
            end_date=body.end_date,
            profile=body.profile,
            max_enrollments=body.max_enrollments,
            clear_max_enrollments="max_enrollments" in body.model_fields_set and body.max_enrollments is None,
            reclamation=body.reclamation,
        ),
    )
    return CourseChange(course=CourseRead.of(course), jobs_queued=len(jobs))


@router.get("/api/v1/profiles", response_model=ProfileList)
def list_profiles(service: Enrollments, _principal: CurrentPrincipal) -> ProfileList:
    return ProfileList(items=[ProfileRead.of(p) for p in service.profiles()])


@router.get("/api/v1/profiles/{name}", response_model=ProfileRead)
def get_profile(name: ProfileName, service: Enrollments, _principal: CurrentPrincipal) -> ProfileRead:
    return ProfileRead.of(service.profile(name))


@router.get("/api/v1/profiles/{name}/versions", response_model=ProfileList)
def profile_versions(name: ProfileName, service: Enrollments, _principal: CurrentPrincipal) -> ProfileList:
    service.profile(name)
    return ProfileList(items=[ProfileRead.of(p) for p in service.repository.profile_versions(name)])


@router.put("/api/v1/profiles/{name}", response_model=ProfileChange)
def save_profile(
    name: ProfileName, body: ProfileWrite, service: Enrollments, _admin: AdminPrincipal
) -> ProfileChange:
    """Adds a version (`baseline` is the profile every active student gets); affected students are
    re-applied by jobs."""
    profile, jobs = service.save_profile(name, parse_quota_values(body.values, "values"), body.description)
    return ProfileChange(profile=ProfileRead.of(profile), jobs_queued=len(jobs))
