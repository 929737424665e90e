"""The fault proxy relays the devcloud faithfully, keeps clients on the proxy, injects the faults asked."""

from __future__ import annotations

import email.utils
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import keystoneauth1.exceptions
import openstack
import openstack.connection
import pytest
import requests
from keystoneauth1.identity.base import BaseIdentityPlugin

from stackyard.devcloud.access import Credentials
from stackyard.devcloud.launcher import Devcloud
from support.clouds import sdk_connection as connect_direct
from support.faultproxy import FaultKind, FaultPlan, FaultProxy, RetryAfter, devcloud_upstreams

pytestmark = pytest.mark.devcloud

NO_RETRIES = {"connect_retries": 0, "status_code_retries": 0, "raise_exc": False}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def running_proxy(devcloud: Devcloud) -> Iterator[FaultProxy]:
    with FaultProxy(devcloud_upstreams(devcloud.ports)) as proxy:
        yield proxy


@pytest.fixture
def proxy(running_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The module's proxy with no faults and an empty log; each test sets its own plan."""
    running_proxy.set_plan(FaultPlan())
    running_proxy.clear()
    yield running_proxy
    running_proxy.set_plan(FaultPlan())


@pytest.fixture(scope="module")
def proxied(
    running_proxy: FaultProxy, admin_credentials: Credentials
) -> Iterator[openstack.connection.Connection]:
    conn = openstack.connect(
        **running_proxy.clouds_entry(admin_credentials), load_yaml_config=False, load_envvars=False
    )
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def direct(admin_credentials: Credentials) -> Iterator[openstack.connection.Connection]:
    conn = connect_direct(admin_credentials)
    yield conn
    conn.close()


def endpoint(conn: openstack.connection.Connection, service_type: str) -> str:
    url = conn.session.get_endpoint(service_type=service_type, interface="public")
    assert isinstance(url, str), service_type
    return url.rstrip("/")


def get_flavors(conn: openstack.connection.Connection) -> requests.Response:
    response: requests.Response = conn.session.get(f"{endpoint(conn, 'compute')}/flavors", **NO_RETRIES)
    return response


def test_clean_relay_keeps_every_service_on_the_proxy(
    proxy: FaultProxy, proxied: openstack.connection.Connection
) -> None:
    assert list(proxied.compute.flavors())
    assert list(proxied.network.networks())
    list(proxied.image.images())  # may be empty; it must just answer
    auth = proxied.session.auth
    assert isinstance(auth, BaseIdentityPlugin)
    catalog = auth.get_access(proxied.session).service_catalog.catalog
    proxy_ports = {proxy.port_for(name) for name in proxy.upstreams}
    for entry in catalog:
        for ep in entry["endpoints"]:
            if ep["interface"] == "public":
                port = int(ep["url"].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
                assert port in proxy_ports, ep["url"]
    seen = {exchange.service for exchange in proxy.log}
    assert {"nova", "neutron", "glance"} <= seen
    assert all(exchange.fault is None for exchange in proxy.log)
    assert not proxy.counts


def test_keystone_discovery_links_point_at_the_proxy(proxy: FaultProxy) -> None:
    response = requests.get(proxy.auth_url(), timeout=10)
    assert response.status_code == 200
    hrefs = [link["href"] for link in response.json()["version"]["links"]]
    assert hrefs
    assert all(href.startswith(proxy.url_for("keystone")) for href in hrefs), hrefs


def test_503_on_flavors_only(proxy: FaultProxy, proxied: openstack.connection.Connection) -> None:
    proxy.set_plan(FaultPlan(error_503=1.0, methods=frozenset({"GET"}), path_pattern=r"/flavors"))
    response = get_flavors(proxied)
    assert response.status_code == 503
    assert response.headers["X-Faultproxy-Fault"] == FaultKind.ERROR_503
    assert "Retry-After" not in response.headers
    servers = proxied.session.get(f"{endpoint(proxied, 'compute')}/servers", **NO_RETRIES)
    assert servers.status_code == 200
    assert proxy.counts == {FaultKind.ERROR_503: 1}
    assert [(e.method, e.fault) for e in proxy.log if e.path.endswith("/flavors")] == [
        ("GET", FaultKind.ERROR_503)
    ]


@pytest.mark.parametrize("form", [RetryAfter.SECONDS, RetryAfter.HTTP_DATE, RetryAfter.NONE])
def test_429_with_retry_after_forms(
    proxy: FaultProxy, proxied: openstack.connection.Connection, form: RetryAfter
) -> None:
    proxy.set_plan(
        FaultPlan(too_many_429=1.0, path_pattern=r"/flavors$", retry_after=form, retry_after_seconds=7)
    )
    response = get_flavors(proxied)
    assert response.status_code == 429
    if form is RetryAfter.NONE:
        assert "Retry-After" not in response.headers
    elif form is RetryAfter.SECONDS:
        assert response.headers["Retry-After"] == "7"
    else:
        when = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
        assert 3 <= (when - datetime.now(UTC)).total_seconds() <= 8
    assert proxy.counts == {FaultKind.TOO_MANY_429: 1}


def test_consecutive_faults_are_capped_per_path(
    proxy: FaultProxy, proxied: openstack.connection.Connection
) -> None:
    proxy.set_plan(FaultPlan(error_503=1.0, path_pattern=r"/flavors$", max_consecutive=2))
    statuses = [get_flavors(proxied).status_code for _ in range(6)]
    assert statuses == [503, 503, 200, 503, 503, 200]


def test_same_seed_same_faults(proxy: FaultProxy, proxied: openstack.connection.Connection) -> None:
    plan = FaultPlan(
        error_503=0.3, too_many_429=0.3, path_pattern=r"/flavors$", max_consecutive=None, seed=42
    )
    runs = []
    for _ in range(2):
        proxy.set_plan(plan)
        runs.append([get_flavors(proxied).status_code for _ in range(12)])
    assert runs[0] == runs[1]
    assert {200, 429, 503} <= set(runs[0])


def test_spare_auth_lets_clients_log_in_through_a_failing_cloud(
    proxy: FaultProxy, admin_credentials: Credentials
) -> None:
    proxy.set_plan(FaultPlan(error_503=1.0, max_consecutive=None))
    conn = openstack.connect(
        **proxy.clouds_entry(admin_credentials), load_yaml_config=False, load_envvars=False
    )
    try:
        assert conn.session.get_token()
        assert get_flavors(conn).status_code == 503
    finally:
        conn.close()
    assert any(e.path.endswith("/auth/tokens") and e.fault is None for e in proxy.log)


def create_network_through_reset(
    proxy: FaultProxy,
    proxied: openstack.connection.Connection,
    direct: openstack.connection.Connection,
    request: pytest.FixtureRequest,
    after_share: float,
) -> str:
    name = unique("fp-net")

    # Registered before the create: the response is lost, so clean up by name.
    def cleanup() -> None:
        for network in direct.network.networks(name=name):
            direct.network.delete_network(network, ignore_missing=True)

    request.addfinalizer(cleanup)
    proxy.set_plan(
        FaultPlan(
            reset=1.0,
            reset_after_forward=after_share,
            methods=frozenset({"POST"}),
            path_pattern=r"/networks$",
        )
    )
    with pytest.raises(keystoneauth1.exceptions.ConnectionError):
        proxied.session.post(
            f"{endpoint(proxied, 'network')}/v2.0/networks", json={"network": {"name": name}}, **NO_RETRIES
        )
    return name


def test_reset_after_forward_still_creates(
    proxy: FaultProxy,
    proxied: openstack.connection.Connection,
    direct: openstack.connection.Connection,
    request: pytest.FixtureRequest,
) -> None:
    name = create_network_through_reset(proxy, proxied, direct, request, after_share=1.0)
    assert [n.name for n in direct.network.networks(name=name)] == [name]
    assert proxy.counts == {FaultKind.RESET_AFTER: 1}


def test_reset_before_forward_creates_nothing(
    proxy: FaultProxy,
    proxied: openstack.connection.Connection,
    direct: openstack.connection.Connection,
    request: pytest.FixtureRequest,
) -> None:
    name = create_network_through_reset(proxy, proxied, direct, request, after_share=0.0)
    assert list(direct.network.networks(name=name)) == []
    assert proxy.counts == {FaultKind.RESET_BEFORE: 1}


def test_delay_outlasts_the_client_timeout(
    proxy: FaultProxy, proxied: openstack.connection.Connection
) -> None:
    proxy.set_plan(FaultPlan(delay=1.0, delay_seconds=3.0, path_pattern=r"/flavors$"))
    url = f"{endpoint(proxied, 'compute')}/flavors"
    headers = {"X-Auth-Token": proxied.session.get_token()}
    began = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, headers=headers, timeout=1.0)
    assert time.monotonic() - began < 2.5
    assert proxy.counts == {FaultKind.DELAY: 1}
    proxy.set_plan(FaultPlan())
    assert requests.get(url, headers=headers, timeout=10).status_code == 200


def test_large_chunked_upload_and_streamed_download(
    proxy: FaultProxy,
    proxied: openstack.connection.Connection,
    direct: openstack.connection.Connection,
    request: pytest.FixtureRequest,
) -> None:
    container = unique("fp-bucket")
    base = f"{endpoint(proxied, 'object-store')}/{container}"
    headers = {"X-Auth-Token": proxied.session.get_token()}
    assert requests.put(base, headers=headers, timeout=30).status_code in (201, 202)
    request.addfinalizer(lambda: direct.object_store.delete_container(container, ignore_missing=True))
    piece = hashlib.sha256(b"faultproxy").digest() * 32 * 1024  # 1 MiB
    pieces = 12
    expected = hashlib.sha256(piece * pieces).hexdigest()

    def body() -> Iterator[bytes]:  # a generator makes requests send Transfer-Encoding: chunked
        for _ in range(pieces):
            yield piece

    put = requests.put(f"{base}/blob", data=body(), headers=headers, timeout=60)
    assert put.status_code == 201, put.text
    request.addfinalizer(
        lambda: direct.object_store.delete_object("blob", container=container, ignore_missing=True)
    )
    head = requests.head(f"{base}/blob", headers=headers, timeout=30)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(piece) * pieces
    digest = hashlib.sha256()
    with requests.get(f"{base}/blob", headers=headers, stream=True, timeout=60) as response:
        assert response.status_code == 200
        for block in response.iter_content(256 * 1024):
            digest.update(block)
    assert digest.hexdigest() == expected


class _FakeUpstream(BaseHTTPRequestHandler):
    """Answers with upstream URLs in a Location header and a chunked JSON body, as some services do."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        address = self.server.server_address
        assert isinstance(address, tuple)
        own = f"http://127.0.0.1:{address[1]}"
        body = json.dumps({"self": f"{own}/x", "escaped": f"{own}/y", "other": "http://127.0.0.1:1/z"})
        # Some JSON encoders escape slashes; the proxy must rewrite those URLs too.
        body = body.replace(f'"{own}/y"', f'"{own}/y"'.replace("/", "\\/"))
        data = body.encode()
        self.send_response(201)
        self.send_header("Location", f"{own}/x")
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = len(data) // 2
        for part in (data[:half], data[half:]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_location_and_chunked_json_are_rewritten() -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _FakeUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with FaultProxy({"fake": upstream.server_address[1]}) as proxy:
            response = requests.get(proxy.url_for("fake", "/"), timeout=10)
            mine = proxy.url_for("fake")
            assert response.status_code == 201
            assert response.headers["Location"] == f"{mine}/x"
            assert response.json() == {
                "self": f"{mine}/x",
                "escaped": f"{mine}/y",
                "other": "http://127.0.0.1:1/z",
            }
            assert response.headers["Content-Length"] == str(len(response.content))
    finally:
        upstream.shutdown()
        upstream.server_close()
