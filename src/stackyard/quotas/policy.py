"""The quota settings in the slice's own vocabulary, parsed once in entry points."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from stackyard.config import QuotaSettings
from stackyard.quotas.models import QuotaValues, Resource, parse_quota_values
from stackyard.quotas.reclaim import ReclaimPolicy, parse_reclaim_policy

BASELINE = "baseline"  # the profile every active student gets
# What a fresh installation gives every student before an admin edits the baseline: room for the
# network a project needs to boot anything, nothing that costs compute or storage.
DEFAULT_BASELINE: dict[Resource, int] = {
    Resource.INSTANCES: 0,
    Resource.CORES: 0,
    Resource.RAM: 0,
    Resource.KEY_PAIRS: 10,
    Resource.SERVER_GROUPS: 0,
    Resource.VOLUMES: 0,
    Resource.GIGABYTES: 0,
    Resource.SNAPSHOTS: 0,
    Resource.BACKUPS: 0,
    Resource.NETWORKS: 1,
    Resource.SUBNETS: 1,
    Resource.PORTS: 10,
    Resource.ROUTERS: 1,
    Resource.FLOATING_IPS: 0,
    Resource.SECURITY_GROUPS: 10,
    Resource.SECURITY_GROUP_RULES: 100,
}


@dataclass(frozen=True)
class QuotaPolicy:
    domain: str = "default"
    project_pattern: str = "stu-{student_number}"
    create_users: bool = False
    member_role: str = "member"
    enrollment_grace: timedelta = timedelta(days=14)
    reduction_grace: timedelta = timedelta(days=7)
    caps: QuotaValues = field(default_factory=dict)
    reclamation: ReclaimPolicy = field(default_factory=ReclaimPolicy)
    concurrency: int = 4
    apply_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: QuotaSettings) -> QuotaPolicy:
        return cls(
            domain=settings.domain,
            project_pattern=settings.project_pattern,
            create_users=settings.create_users,
            member_role=settings.member_role,
            enrollment_grace=timedelta(days=settings.enrollment_grace_days),
            reduction_grace=timedelta(days=settings.reduction_grace_days),
            caps=parse_quota_values(settings.caps, "quotas.caps"),
            reclamation=parse_reclaim_policy(settings.reclamation, "quotas.reclamation"),
            concurrency=settings.concurrency,
            apply_timeout=settings.apply_timeout,
        )

    def project_name(self, student_number: str) -> str:
        return self.project_pattern.format(student_number=student_number)

    def expiry_of(self, course_end: date) -> datetime:
        """An enrollment counts until the end (UTC) of its course's last day, plus the grace."""
        end = datetime.combine(course_end, time.max, tzinfo=UTC)
        try:
            return end + self.enrollment_grace
        except OverflowError:  # a course "ending" near the year 9999: it never expires
            return datetime.max.replace(tzinfo=UTC)
