"""An OpenstackConfig's status from a sync's outcome (pure): Ready/Degraded conditions, per-node summary.

Conditions follow the Kubernetes convention (type, status, reason, message, lastTransitionTime,
observedGeneration); a condition's lastTransitionTime moves only when its status changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from stackyard.inventory.service import NodeState, SyncResult


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    kind: str,
    is_true: bool,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
    previous: Sequence[Mapping[str, object]] = (),
) -> dict[str, object]:
    status = "True" if is_true else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    since = _time(now)
    if before is not None and before.get("status") == status:
        since = str(before.get("lastTransitionTime") or since)
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:1024],
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def status_of_result(
    result: SyncResult, *, generation: int, now: datetime, previous: Sequence[Mapping[str, object]] = ()
) -> dict[str, object]:
    """The status after a sync that ran: Ready when every node is configured and pushed."""
    failed = [n for n in result.nodes if n.state is NodeState.FAILED]
    excluded = [n for n in result.nodes if n.state is NodeState.EXCLUDED]
    if failed:
        reason, message = "PushFailed", "; ".join(f"{n.node_name}: {n.message}" for n in failed)
    elif excluded:
        reason, message = "NodesExcluded", "; ".join(f"{n.node_name}: {n.message}" for n in excluded)
    else:
        reason, message = "Synced", f"{len(result.nodes)} node(s) in sync"
    is_ready = not failed and not excluded
    return {
        "conditions": [
            condition("Ready", is_ready, reason, message, generation=generation, now=now, previous=previous),
            condition(
                "Degraded", not is_ready, reason, message, generation=generation, now=now, previous=previous
            ),
        ],
        "lastSyncedAt": _time(result.synced_at),
        "lastError": message if failed else None,
        "nodes": [
            {
                "node": n.node_name,
                "instanceId": n.instance_id,
                "interfaces": n.interfaces,
                "state": n.state.value,
            }
            for n in result.nodes
        ],
        "observedGeneration": generation,
    }


def status_of_error(
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
    previous: Sequence[Mapping[str, object]] = (),
) -> dict[str, object]:
    """The status when no sync could run (bad spec, missing Secret, cloud unreachable)."""
    return {
        "conditions": [
            condition("Ready", False, reason, message, generation=generation, now=now, previous=previous),
            condition("Degraded", True, reason, message, generation=generation, now=now, previous=previous),
        ],
        "lastError": message[:1024],
        "observedGeneration": generation,
    }
