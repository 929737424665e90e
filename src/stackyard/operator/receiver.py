"""A minimal receiver for node configs, for trying the operator out: checks and keeps what it is sent.

It stands in for the in-cluster agent that configures the interfaces: POST /v1/node-configs takes a
MultiNicNodeConfig, answers 422 naming the field when the payload is not one, and keeps the latest
config per node in memory; GET lists them. With a token set, requests must send `Bearer <token>`.
"""

from __future__ import annotations

import hmac
import logging
import threading
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException

from stackyard.inventory.models import PAYLOAD_API_VERSION, PAYLOAD_KIND

_LOG = logging.getLogger(__name__)
_REQUIRED = ("nodeName", "instanceId", "providerId", "interfaces")
_INTERFACE_REQUIRED = ("id", "macAddress", "address", "cidr", "mtu")


def _problem(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail={"field": field, "message": message})


def check_payload(body: Any) -> dict[str, Any]:
    """The payload if it is a MultiNicNodeConfig this receiver understands; else 422 naming the field."""
    if not isinstance(body, dict):
        raise _problem("body", "expected a JSON object")
    if body.get("apiVersion") != PAYLOAD_API_VERSION or body.get("kind") != PAYLOAD_KIND:
        raise _problem("apiVersion", f"expected apiVersion {PAYLOAD_API_VERSION}, kind {PAYLOAD_KIND}")
    for key in _REQUIRED:
        if key not in body:
            raise _problem(key, "is required")
    interfaces = body["interfaces"]
    if not isinstance(interfaces, list):
        raise _problem("interfaces", "expected a list")
    for index, interface in enumerate(interfaces):
        for key in _INTERFACE_REQUIRED:
            if not isinstance(interface, dict) or key not in interface:
                raise _problem(f"interfaces[{index}].{key}", "is required")
    return body


def create_receiver(token: str | None = None) -> FastAPI:
    app = FastAPI(title="stackyard node-config receiver", docs_url=None, redoc_url=None)
    latest: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def authorize(authorization: str | None) -> None:
        if token is None:
            return
        if authorization is None or not hmac.compare_digest(authorization, f"Bearer {token}"):
            raise HTTPException(401, detail="missing or wrong bearer token")

    @app.post("/v1/node-configs")
    def receive(
        body: dict[str, Any], authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, object]:
        authorize(authorization)
        payload = check_payload(body)
        node = str(payload["nodeName"])
        with lock:
            latest[node] = payload
            counts[node] = counts.get(node, 0) + 1
        _LOG.info("node config for %s: %d interface(s)", node, len(payload["interfaces"]))
        return {"accepted": node}

    @app.get("/v1/node-configs")
    def listed(authorization: Annotated[str | None, Header()] = None) -> dict[str, object]:
        authorize(authorization)
        with lock:
            return {"items": list(latest.values()), "received": dict(counts)}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
