"""Failures over HTTP: readiness, an unreachable cloud, unknown providers, request ids, logs and metrics."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.api_client import Api, Credential, auth_headers, error_of
from support.api_instances import BROKEN, DEVCLOUD

pytestmark = pytest.mark.devcloud

# How stackyard's errors map to HTTP for a failing cloud (stackyard.api.errors).
CLOUD_FAILURES = {
    (502, "cloud_error"),
    (502, "cloud_unauthorized"),
    (503, "cloud_unavailable"),
    (504, "cloud_timeout"),
}
RETRY_DEADLINE = 5  # STACKYARD_RETRY_DEADLINE of the test server


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric in a Prometheus exposition, by their sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def request_count(api: Api, method: str, route: str, status: str) -> float:
    response = httpx.get(f"{api.base_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    key = (("method", method), ("route", route), ("status", status))
    return samples(response.text, "stackyard_http_requests_total").get(key, 0.0)


def test_readyz_names_the_broken_provider(api: Api) -> None:
    response = httpx.get(f"{api.base_url}/readyz", timeout=60)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "not ready"
    checks = {check["name"]: check for check in body["checks"]}
    assert set(checks) == {"database", f"provider:{BROKEN}", f"provider:{DEVCLOUD}"}
    assert checks["database"]["ok"] is True
    assert checks[f"provider:{DEVCLOUD}"]["ok"] is True
    assert checks[f"provider:{BROKEN}"]["ok"] is False
    assert checks[f"provider:{BROKEN}"]["message"]
    assert "not-a-password" not in response.text


def test_providers_show_which_cloud_is_reachable(api: Api) -> None:
    with api.as_admin() as client:
        response = client.get("/api/v1/providers")
    assert response.status_code == 200, response.text
    providers = {p["name"]: p for p in response.json()["items"]}
    assert set(providers) == {BROKEN, DEVCLOUD}
    assert (providers[BROKEN]["reachable"], providers[BROKEN]["auth_ok"]) == (False, False)
    assert providers[BROKEN]["regions"] == [] and providers[BROKEN]["message"]
    assert (providers[DEVCLOUD]["reachable"], providers[DEVCLOUD]["auth_ok"]) == (True, True)
    assert providers[DEVCLOUD]["regions"] == ["RegionOne"] and providers[DEVCLOUD]["type"] == "openstack"
    assert "not-a-password" not in response.text


@pytest.mark.parametrize("path", ["instances", "flavors", "images", "regions"])
def test_calls_to_an_unreachable_cloud_map_to_a_cloud_error(api: Api, path: str) -> None:
    """Nothing listens on the broken cloud's Keystone port. The retry layer treats a refused connection
    as "the cloud is unreachable": it waits for the network to come back within the call's deadline
    (5 s here) and then gives up with Timeout, which the API maps to 504 cloud_timeout."""
    started = time.monotonic()
    with api.as_admin() as client:
        response = client.get(f"/api/v1/providers/{BROKEN}/{path}")
    elapsed = time.monotonic() - started
    status = response.status_code
    error = error_of(response, status)
    assert (status, error["code"]) in CLOUD_FAILURES, (status, error)
    assert (status, error["code"]) == (504, "cloud_timeout"), error  # the mapping observed (see above)
    assert "deadline" in str(error["message"]), error
    assert error["details"].get("service"), error  # type: ignore[union-attr]
    assert elapsed < RETRY_DEADLINE * 4, f"the deadline did not bound the call: {elapsed:.1f}s"
    assert "not-a-password" not in response.text


def test_unknown_provider_is_404(api: Api) -> None:
    with api.as_admin() as client:
        for response in (
            client.get("/api/v1/providers/nope/instances"),
            client.get("/api/v1/providers/nope/flavors"),
            client.get(f"/api/v1/providers/nope/instances/{uuid.uuid4()}"),
            client.post("/api/v1/providers/nope/estimates", json={"type": "m1.tiny"}),
        ):
            error = error_of(response, 404, "not_found")
            assert "nope" in str(error["message"])


def test_unknown_route_and_method_use_the_error_shape(api: Api) -> None:
    with api.as_admin() as client:
        error_of(client.get("/api/v1/nothing-here"), 404, "not_found")
        error_of(client.patch("/api/v1/providers"), 405, "method_not_allowed")
        error_of(
            client.post(
                "/api/v1/api-keys", content=b"{not json", headers={"Content-Type": "application/json"}
            ),
            422,
        )


def test_request_ids_are_echoed_or_made(api: Api) -> None:
    offered = f"client-{uuid.uuid4().hex}"
    with api.client({"X-Request-ID": offered}) as client:
        ok = client.get("/healthz")
        assert ok.headers["x-request-id"] == offered
        error = error_of(client.get("/api/v1/providers"), 401)  # no credentials
        assert error["request_id"] == offered
    for bad in ("has spaces in it", "x" * 65, "semi;colon"):
        response = httpx.get(f"{api.base_url}/api/v1/providers", headers={"X-Request-ID": bad}, timeout=30)
        made = error_of(response, 401)["request_id"]
        assert isinstance(made, str) and made.startswith("req-") and made != bad
    seen = {httpx.get(f"{api.base_url}/healthz", timeout=30).headers["x-request-id"] for _ in range(5)}
    assert len(seen) == 5


def test_the_access_log_carries_the_request_id(api: Api) -> None:
    offered = f"log-{uuid.uuid4().hex}"
    with api.client({**auth_headers(Credential.BEARER, api.admin_key), "X-Request-ID": offered}) as client:
        assert client.get("/api/v1/auth/whoami").status_code == 200
    deadline = time.monotonic() + 10
    entries: list[dict[str, object]] = []
    while not entries and time.monotonic() < deadline:
        lines = Path(api.server.log_path).read_text(errors="replace").splitlines()
        entries = [json.loads(line) for line in lines if offered in line and line.startswith("{")]
        time.sleep(0.2)
    assert entries, f"no log line with request id {offered}:\n{api.server.log_tail()}"
    access = [e for e in entries if e.get("logger") == "stackyard.access"]
    assert len(access) == 1, entries
    assert access[0]["request_id"] == offered and access[0]["status"] == 200
    assert access[0]["route"] == "/api/v1/auth/whoami" and str(access[0]["principal"]).startswith("apikey:")
    assert api.admin_key not in Path(api.server.log_path).read_text(errors="replace")


def test_metrics_need_no_auth_and_count_routes_and_cloud_calls(api: Api) -> None:
    with api.as_admin() as client:
        assert client.get(f"/api/v1/providers/{DEVCLOUD}/flavors").status_code == 200
    response = httpx.get(f"{api.base_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    requests = samples(response.text, "stackyard_http_requests_total")
    routes = {dict(labels)["route"] for labels in requests}
    assert "/api/v1/providers/{provider}/flavors" in routes and "/healthz" in routes
    assert not any(DEVCLOUD in route or "dummy" in route for route in routes), routes  # templates only
    calls = samples(response.text, "stackyard_cloud_calls_total")
    assert any(dict(labels) == {"service": "compute", "outcome": "ok"} for labels in calls), calls


def test_metrics_are_summed_over_the_workers(api: Api, api_metrics_dir: Path) -> None:
    route = "/api/v1/auth/whoami"
    before = request_count(api, "GET", route, "200")
    made = 30
    headers = auth_headers(Credential.BEARER, api.admin_key)
    for _ in range(made):
        # A new connection each time, so the kernel hands them to either worker.
        response = httpx.get(f"{api.base_url}{route}", headers=headers, timeout=30)
        assert response.status_code == 200, response.text
    after = request_count(api, "GET", route, "200")
    assert after - before == made, (before, after)
    # Both workers served requests: each writes its samples to a file named after its pid.
    pids = {path.stem.rsplit("_", 1)[-1] for path in api_metrics_dir.glob("counter_*.db")}
    assert len(pids) >= 2, sorted(api_metrics_dir.iterdir())
