"""One OpenstackConfig brought in line: spec → Secret → sync → status and when to look again.

No kopf here: the handlers call `Reconciler.reconcile` in a thread and write what it returns. All state
that matters lives in the database (the inventory rows of scope `cr:<namespace>/<name>`), so any
replica can pick a resource up; what is kept in memory (polling state, connections) is only a cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.connect import open_connection, resolve_clouds_yaml_text
from stackyard.cloud.ports import PortGateway
from stackyard.cloud.session import open_session
from stackyard.db.base import utcnow
from stackyard.errors import CloudError, ConfigError, NotFound, StackyardError, ValidationError
from stackyard.inventory.events import WatchedSet
from stackyard.inventory.loop import SyncLoop
from stackyard.inventory.models import allowed_statuses
from stackyard.inventory.push import Endpoint, NodeConfigPusher
from stackyard.inventory.service import InventoryService, SyncRequest, SyncResult
from stackyard.inventory.watch import watched_set_of
from stackyard.operator.kube import KubeClient
from stackyard.operator.spec import OperatorSpec, TargetSpec, parse_spec
from stackyard.operator.status import status_of_error, status_of_result

_LOG = logging.getLogger(__name__)


def scope_of(namespace: str, name: str) -> str:
    """The inventory rows an OpenstackConfig owns; its finalizer removes exactly these."""
    return f"cr:{namespace}/{name}"


@dataclass(frozen=True)
class Reconciled:
    status: dict[str, object]
    delay: float | None  # seconds until the next sync; None: not before the spec changes
    error: StackyardError | None = None
    watched: WatchedSet | None = None  # what a notification must touch to make the next sync sooner

    @property
    def is_permanent(self) -> bool:
        return self.delay is None


@dataclass
class _Tracked:
    generation: int
    loop: SyncLoop


class Reconciler:
    def __init__(
        self,
        kube: KubeClient,
        sessions: sessionmaker[Session],
        *,
        request_timeout: float = 30.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._kube = kube
        self._now = now
        self._request_timeout = request_timeout
        self._gateways: dict[str, PortGateway] = {}
        self._tracked: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self.service = InventoryService(sessions, ports_for=self._gateway)

    # -- the cloud, from the Secret ------------------------------------------------------------------

    def _gateway(self, key: str) -> PortGateway:
        with self._lock:
            gateway = self._gateways.get(key)
        if gateway is None:
            raise ConfigError(f"no connection for {key!r}: the Secret was not read first")
        return gateway

    def _cloud_key(self, namespace: str, spec: OperatorSpec) -> str:
        """Read the credentials Secret; a gateway per (Secret version, cloud), rebuilt when it changes."""
        ref = spec.credentials
        secret = self._kube.secret(namespace, ref.name)
        text = secret.value(ref.key)
        fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        key = f"secret:{namespace}/{ref.name}/{ref.key}#{spec.cloud}@{fingerprint}"
        with self._lock:
            if key in self._gateways:
                return key
        source = f"Secret {namespace}/{ref.name} key {ref.key!r}"
        resolved = resolve_clouds_yaml_text(
            text, spec.cloud, source=source, request_timeout=self._request_timeout
        )
        session = open_session(open_connection(resolved), name=f"{namespace}/{ref.name}:{spec.cloud}")
        with self._lock:
            stale = [k for k in self._gateways if k.startswith(key.split("@")[0] + "@")]
            for old in stale:
                del self._gateways[old]
            self._gateways[key] = PortGateway(session)
        return key

    def _endpoint(self, namespace: str, target: TargetSpec) -> Endpoint:
        header = None
        if target.auth_secret is not None:
            header = (
                self._kube.secret(namespace, target.auth_secret.name).value(target.auth_secret.key).strip()
            )
        return Endpoint(target.url, insecure=target.insecure, auth_header=header)

    # -- one pass ------------------------------------------------------------------------------------

    def reconcile(
        self,
        namespace: str,
        name: str,
        uid: str,
        spec: Mapping[str, object],
        *,
        generation: int,
        conditions: Sequence[Mapping[str, object]] = (),
    ) -> Reconciled:
        """Sync once. Never raises for bad input or cloud trouble: the status says what went wrong."""
        now = self._now()
        try:
            parsed = parse_spec(spec)
        except ValidationError as exc:
            status = status_of_error(
                "InvalidSpec", str(exc), generation=generation, now=now, previous=conditions
            )
            return Reconciled(status, None, exc)
        retry_in = parsed.intervals.error
        watched = WatchedSet.of(parsed.vm_ids)
        try:
            connection = self._cloud_key(namespace, parsed)
            endpoint = self._endpoint(namespace, parsed.target)
        except (CloudError, ConfigError, ValidationError) as exc:
            reason = "SecretNotFound" if isinstance(exc, NotFound) else "CredentialsInvalid"
            status = status_of_error(reason, str(exc), generation=generation, now=now, previous=conditions)
            return Reconciled(status, retry_in, exc, watched)
        request = SyncRequest(
            scope=scope_of(namespace, name),
            cloud=parsed.cloud,
            connection=connection,
            project_id=parsed.project_id,
            instance_ids=parsed.vm_ids,
            subnet_id=parsed.subnet_id,
            subnet_name=parsed.subnet_name,
            metadata_key=parsed.metadata_key,
            allowed_statuses=allowed_statuses(allow_down=parsed.allow_down),
        )
        pusher = NodeConfigPusher(endpoint)
        try:
            loop = self._loop(uid, generation, parsed)
            loop.sync = lambda: self.service.sync(request, pusher)
            outcome = loop.step()
        except SQLAlchemyError as exc:
            # The inventory database is down or refused the rows: said in the status, tried again.
            problem = StackyardError(f"inventory database: {database_problem(exc)}")
            status = status_of_error(
                "DatabaseError", str(problem), generation=generation, now=now, previous=conditions
            )
            return Reconciled(status, retry_in, problem, watched)
        finally:
            pusher.close()
        error = outcome.error
        if error is not None:
            reason = f"Cloud{type(error).__name__}" if isinstance(error, CloudError) else "SyncFailed"
            status = status_of_error(reason, str(error), generation=generation, now=now, previous=conditions)
            return Reconciled(status, outcome.delay, error, watched)
        assert outcome.result is not None
        status = status_of_result(outcome.result, generation=generation, now=now, previous=conditions)
        return Reconciled(status, outcome.delay, watched=watched_set_of(parsed.vm_ids, outcome.result))

    def _loop(self, uid: str, generation: int, spec: OperatorSpec) -> SyncLoop:
        """The resource's polling state; a new spec (generation) starts it afresh, in the fast phase."""
        with self._lock:
            tracked = self._tracked.get(uid)
            if tracked is None or tracked.generation != generation:
                tracked = _Tracked(generation, SyncLoop(sync=_not_yet, intervals=spec.intervals))
                self._tracked[uid] = tracked
            return tracked.loop

    def forget(self, namespace: str, name: str, uid: str) -> int:
        """The resource is being deleted: drop its inventory rows and polling state."""
        with self._lock:
            self._tracked.pop(uid, None)
        removed = self.service.forget_scope(scope_of(namespace, name))
        _LOG.info("OpenstackConfig %s/%s deleted: %d inventory row(s) removed", namespace, name, removed)
        return removed


def database_problem(exc: SQLAlchemyError) -> str:
    """The driver's own message without the statement and its parameters (which carry the payloads)."""
    origin = getattr(exc, "orig", None) or exc
    return f"{type(origin).__name__}: {str(origin).strip().splitlines()[0] if str(origin).strip() else ''}"


def _not_yet() -> SyncResult:
    raise AssertionError("SyncLoop.sync is set before each step")
