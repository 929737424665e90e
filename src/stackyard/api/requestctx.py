"""The request id of the request being served, for logs and error bodies."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_current: ContextVar[str | None] = ContextVar("stackyard_request_id", default=None)


def new_request_id(offered: str | None) -> str:
    """Keep a well-formed id a load balancer or client sent; otherwise make one."""
    if offered and _VALID.match(offered):
        return offered
    return f"req-{uuid.uuid4()}"


def set_request_id(request_id: str | None) -> None:
    _current.set(request_id)


def current_request_id() -> str | None:
    return _current.get()
