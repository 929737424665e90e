"""Wait for a resource to reach a typed status or disappear: failure states, progress, a deadline."""

from __future__ import annotations

from collections.abc import Callable, Collection
from enum import Enum
from typing import Final, Literal, Protocol, TypeVar, overload

from stackyard.cloud.clock import Clock
from stackyard.cloud.errormap import redact
from stackyard.cloud.status import OpenStackStatus
from stackyard.errors import NotFound, ResourceFailed, Timeout

R = TypeVar("R")
S = TypeVar("S", bound=OpenStackStatus)
S_contra = TypeVar("S_contra", bound=OpenStackStatus, contravariant=True)


class Gone(Enum):
    """The target meaning "until the resource no longer exists"."""

    DELETED = "deleted"


DELETED: Final = Gone.DELETED


class ProgressCallback(Protocol[S_contra]):
    """Told about each change: the status, the percent done when the service reports it, seconds waited."""

    def __call__(self, status: S_contra, progress: int | None, elapsed: float) -> None: ...


@overload
def wait_for(
    fetch: Callable[[], R],
    target: S,
    failures: Collection[S] = ...,
    *,
    status_of: Callable[[R], S],
    timeout: float,
    clock: Clock,
    interval: float = ...,
    on_progress: ProgressCallback[S] | None = ...,
    fault_of: Callable[[R], str | None] | None = ...,
    progress_of: Callable[[R], int | None] | None = ...,
    what: str = ...,
    service: str | None = ...,
) -> R: ...


@overload
def wait_for(
    fetch: Callable[[], R],
    target: Literal[Gone.DELETED],
    failures: Collection[S] = ...,
    *,
    status_of: Callable[[R], S],
    timeout: float,
    clock: Clock,
    interval: float = ...,
    on_progress: ProgressCallback[S] | None = ...,
    fault_of: Callable[[R], str | None] | None = ...,
    progress_of: Callable[[R], int | None] | None = ...,
    what: str = ...,
    service: str | None = ...,
) -> None: ...


def wait_for(
    fetch: Callable[[], R],
    target: S | Gone,
    failures: Collection[S] = (),
    *,
    status_of: Callable[[R], S],
    timeout: float,
    clock: Clock,
    interval: float = 2.0,
    on_progress: ProgressCallback[S] | None = None,
    fault_of: Callable[[R], str | None] | None = None,
    progress_of: Callable[[R], int | None] | None = None,
    what: str = "resource",
    service: str | None = None,
) -> R | None:
    """Poll `fetch()` every `interval` seconds until the resource's status is `target`.

    `fetch` returns the fresh resource or raises NotFound (it runs under the retrier, so transient
    errors are already handled there). With `target=DELETED`, NotFound — or a status whose name is
    "deleted" — means success and None is returned. Reaching a status in `failures` raises
    ResourceFailed with the resource's fault message; running past `timeout` raises Timeout. UNKNOWN
    statuses keep the wait going. `what` names the resource in messages ("server web-1").
    """
    if timeout < 0 or interval <= 0:
        raise ValueError(f"timeout must be >= 0 and interval > 0, got {timeout} and {interval}")
    started = clock.monotonic()
    deadline = started + timeout
    seen: tuple[S, int | None] | None = None
    wanted = "deletion" if target is DELETED else str(target)
    while True:
        try:
            resource = fetch()
        except NotFound:
            if target is DELETED:
                return None
            raise NotFound(f"{what} disappeared while waiting for {wanted}", service=service) from None
        status = status_of(resource)
        progress = progress_of(resource) if progress_of is not None else None
        elapsed = clock.monotonic() - started
        if on_progress is not None and (status, progress) != seen:
            on_progress(status, progress, elapsed)
        seen = (status, progress)
        if status is target:
            return resource
        if target is DELETED and status.is_deleted:
            return None
        if status in failures:
            fault = fault_of(resource) if fault_of is not None else None
            fault = redact(fault) if fault else None
            message = f"{what} went to {status} while waiting for {wanted}"
            raise ResourceFailed(
                f"{message}: {fault}" if fault else message, service=service, status=str(status), fault=fault
            )
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            raise Timeout(
                f"{what} still {status} after {elapsed:g}s waiting for {wanted} (timeout {timeout:g}s)",
                service=service,
            )
        clock.sleep(min(interval, remaining))
