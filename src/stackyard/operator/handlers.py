"""kopf handlers for OpenstackConfig: thin; every decision is the Reconciler's.

- create/update/resume check the spec: an invalid one fails permanently (kopf will not retry it) and
  its Degraded condition names the field; a valid one wakes the resource's sync daemon at once;
- a daemon per resource syncs, writes the status and sleeps for the interval the sync loop chose
  (fast after a change, slow when stable, error interval on failure) or until the spec changes;
- delete runs behind kopf's finalizer and removes the resource's inventory rows; until that worked
  the resource stays (a database that is down means "try again", never rows left behind).

Replicas: kopf peering lets one operator of a peering act at a time; since the inventory is in the
database, the one that takes over carries on where the other stopped.

Events: with a notification watcher, each resource registers what its last sync depends on (its VMs,
the subnet's network, the ports its configs hold); a Neutron or Nova notification touching that wakes
its daemon at once. Polling stays: an event only makes the next sync sooner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from stackyard.db.base import utcnow
from stackyard.errors import StackyardError, ValidationError
from stackyard.inventory.events import InventoryEvent
from stackyard.inventory.notifications import NotificationWatcher
from stackyard.operator.kube import KubeClient, api_server_of
from stackyard.operator.reconcile import Reconciler
from stackyard.operator.spec import GROUP, PLURAL, VERSION, parse_spec
from stackyard.operator.status import status_of_error

_LOG = logging.getLogger(__name__)

FINALIZER = "stackyard.io/inventory"
_STATUS_RETRY = 5.0  # seconds before writing a status again after the API server refused it


@dataclass
class Runtime:
    """What the handlers share: made at login, when the API server's address is known."""

    make_reconciler: Callable[[KubeClient], Reconciler]
    watcher: NotificationWatcher | None = None  # started and stopped by whoever runs the operator
    reconciler: Reconciler | None = None
    kube: KubeClient | None = None
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)

    def ready(self) -> tuple[Reconciler, KubeClient]:
        if self.reconciler is None or self.kube is None:
            raise kopf.TemporaryError("not logged in to the API server yet", delay=1)
        return self.reconciler, self.kube

    def wakeup(self, uid: str) -> asyncio.Event:
        return self.wakeups.setdefault(uid, asyncio.Event())


def _conditions(status: Mapping[str, Any]) -> list[Mapping[str, object]]:
    found = status.get("conditions") if isinstance(status, Mapping) else None
    return [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


async def _wait(stopped: kopf.DaemonStopped, wake: asyncio.Event, delay: float | None) -> None:
    """Until the daemon is stopped, the resource is woken (spec changed), or `delay` passes."""
    waits = {asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def _waker(
    loop: asyncio.AbstractEventLoop, wake: asyncio.Event, label: str
) -> Callable[[InventoryEvent], None]:
    """A notification callback (it runs on the watcher's thread) that wakes a daemon on `loop`."""

    def notify(event: InventoryEvent) -> None:
        _LOG.info("OpenstackConfig %s: %s; syncing now", label, event.describe())
        loop.call_soon_threadsafe(wake.set)

    return notify


def build_registry(runtime: Runtime) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        # kopf's own bookkeeping in annotations: the status is ours (conditions, nodes).
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.posting.level = logging.WARNING  # Kubernetes events for problems, not for each sync

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if info is not None and runtime.kube is None:
            runtime.kube = KubeClient(api_server_of(info))
            runtime.reconciler = runtime.make_reconciler(runtime.kube)
        return info

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    async def check_spec(
        *,
        spec: kopf.Spec,
        namespace: str | None,
        name: str,
        uid: str,
        meta: kopf.Meta,
        status: kopf.Status,
        **_: Any,
    ) -> None:
        """A bad spec is a permanent failure with a condition naming the field; a good one syncs now."""
        _reconciler, kube = runtime.ready()
        try:
            parse_spec(dict(spec))
        except ValidationError as exc:
            degraded = status_of_error(
                "InvalidSpec",
                str(exc),
                generation=int(meta.get("generation") or 0),
                now=utcnow(),
                previous=_conditions(status),
            )
            await asyncio.to_thread(kube.patch_status, namespace or "", name, degraded)
            raise kopf.PermanentError(f"invalid spec: {exc}") from None
        runtime.wakeup(uid).set()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=30)
    async def keep_in_sync(
        *, stopped: kopf.DaemonStopped, body: kopf.Body, namespace: str | None, name: str, uid: str, **_: Any
    ) -> None:
        reconciler, kube = runtime.ready()
        wake = runtime.wakeup(uid)
        namespace = namespace or ""
        loop = asyncio.get_running_loop()
        is_watched = False
        try:
            while not stopped:
                wake.clear()
                meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status", {})
                outcome = await asyncio.to_thread(
                    reconciler.reconcile,
                    namespace,
                    name,
                    uid,
                    dict(spec),
                    generation=int(meta.get("generation") or 0),
                    conditions=_conditions(status),
                )
                if runtime.watcher is not None and outcome.watched is not None:
                    if is_watched:
                        runtime.watcher.update(uid, outcome.watched)
                    else:
                        runtime.watcher.watch(uid, outcome.watched, _waker(loop, wake, f"{namespace}/{name}"))
                        is_watched = True
                delay = outcome.delay
                try:
                    await asyncio.to_thread(kube.patch_status, namespace, name, outcome.status)
                except StackyardError as exc:
                    _LOG.warning("OpenstackConfig %s/%s: status not written: %s", namespace, name, exc)
                    delay = _STATUS_RETRY if delay is None else min(delay, _STATUS_RETRY)
                if outcome.error is not None:
                    _LOG.warning("OpenstackConfig %s/%s: %s", namespace, name, outcome.error)
                await _wait(stopped, wake, delay)
        finally:
            if runtime.watcher is not None:
                runtime.watcher.unwatch(uid)
            runtime.wakeups.pop(uid, None)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    async def forget(*, namespace: str | None, name: str, uid: str, **_: Any) -> None:
        reconciler, _kube = runtime.ready()
        try:
            await asyncio.to_thread(reconciler.forget, namespace or "", name, uid)
        except StackyardError as exc:
            raise kopf.TemporaryError(f"inventory rows not removed yet: {exc}", delay=10) from exc

    return registry


def run_operator(
    runtime: Runtime,
    *,
    namespaces: tuple[str, ...],
    peering: str | None,
    priority: int,
    liveness: str | None,
) -> None:
    """Run until interrupted. No namespaces: the whole cluster. No peering: standalone."""
    kopf.run(
        registry=build_registry(runtime),
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        standalone=peering is None,
        peering_name=peering,
        priority=priority,
        liveness_endpoint=liveness,
    )
