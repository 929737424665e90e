"""Wire the quota slice for an entry point: gateways on a cloud session, applier, reclaimer, tasks."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.holdings import HoldingsGateway
from stackyard.cloud.projects import ProjectGateway
from stackyard.cloud.quotas import QuotaGateway
from stackyard.cloud.session import CloudSession
from stackyard.quotas.apply import QuotaApplier
from stackyard.quotas.notify import WebhookNotifier
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.reclaimer import Reclaimer
from stackyard.quotas.reconcile import Reconciler
from stackyard.quotas.tasks import QuotaTasks


@dataclass(frozen=True)
class QuotaRuntime:
    policy: QuotaPolicy
    sessions: sessionmaker[Session]
    tasks: QuotaTasks  # the runner's handlers (the settings' retry policy)
    inline: QuotaTasks  # for a caller who waits: the same work under a short retry deadline


def _tasks(
    sessions: sessionmaker[Session], cloud: CloudSession, policy: QuotaPolicy, owner: str | None
) -> QuotaTasks:
    quotas = QuotaGateway(cloud)
    applier = QuotaApplier(sessions, quotas, ProjectGateway(cloud), policy, owner=owner)
    reclaimer = Reclaimer(sessions, HoldingsGateway(cloud), applier, policy, WebhookNotifier())
    reconciler = Reconciler(sessions, applier, quotas, concurrency=policy.concurrency)
    return QuotaTasks(sessions, applier, reclaimer, reconciler, policy)


def build_quota_runtime(
    sessions: sessionmaker[Session],
    cloud: CloudSession,
    policy: QuotaPolicy,
    *,
    inline_cloud: CloudSession | None = None,
    owner: str | None = None,
) -> QuotaRuntime:
    """`owner` names this process in the student leases it takes (for diagnosis)."""
    tasks = _tasks(sessions, cloud, policy, owner)
    inline = _tasks(sessions, inline_cloud, policy, owner) if inline_cloud is not None else tasks
    return QuotaRuntime(policy, sessions, tasks, inline)
