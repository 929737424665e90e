"""Durable jobs: list, read (with progress), cancel. Admins see every job; members the jobs they started."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from stackyard.api.deps import CurrentPrincipal, State
from stackyard.api.quota_schemas import JobList, JobRead
from stackyard.auth.models import Principal
from stackyard.errors import NotFound
from stackyard.jobs.models import Job, JobState
from stackyard.jobs.repository import JobRepository

router = APIRouter(tags=["jobs"])
JobId = Annotated[str, Path(min_length=1, max_length=36, description="Job id.")]


def _visible(principal: Principal, job: Job) -> Job:
    if not principal.is_admin and job.created_by != principal.subject:
        raise NotFound(f"no job {job.id!r}")
    return job


@router.get("/api/v1/jobs", response_model=JobList)
def list_jobs(
    state: State,
    principal: CurrentPrincipal,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    job_state: Annotated[JobState | None, Query(alias="state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    with state.sessions() as session:
        jobs = JobRepository(session).list_jobs(kinds=[kind] if kind else (), state=job_state, limit=limit)
    visible = [j for j in jobs if principal.is_admin or j.created_by == principal.subject]
    return JobList(items=[JobRead.of(j, with_result=False) for j in visible])


@router.get("/api/v1/jobs/{job_id}", response_model=JobRead)
def get_job(job_id: JobId, state: State, principal: CurrentPrincipal) -> JobRead:
    return JobRead.of(_visible(principal, state.runner.get(job_id)))


@router.post("/api/v1/jobs/{job_id}/cancel", response_model=JobRead)
def cancel_job(job_id: JobId, state: State, principal: CurrentPrincipal) -> JobRead:
    """A queued job is cancelled at once; a running one stops at its next progress report."""
    _visible(principal, state.runner.get(job_id))
    return JobRead.of(state.runner.cancel(job_id))
