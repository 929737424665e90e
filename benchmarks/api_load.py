"""`GET /api/v1/providers/devcloud/instances?limit=50` under load vs the same listing via openstacksdk.

Run: uv run python benchmarks/api_load.py [--instances 500] [--concurrency 8] [--duration 30] [--workers 2]
     [--keep] [--port P]
Keeps --instances tiny servers named bench-api-* in a `bench-api` project on the devcloud (only the
missing ones are created, in batches; --keep leaves them for the next run), then starts
`stackyard serve --workers W` on loopback with a throwaway data directory (SQLite, the devcloud as
provider "devcloud", the API's per-client rate limit off) and an admin API key. C threads, each with
one persistent HTTP connection, list for S seconds; then C threads, each with its own admin
openstacksdk Connection, make the equivalent Nova call for S seconds. Prints requests/s, p50/p99
latency and errors of both, and the ratios API / SDK.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.connection
import openstack.exceptions
import yaml

from stackyard.api.metrics import MULTIPROC_ENV
from stackyard.devcloud.access import Credentials, credentials
from stackyard.devcloud.components import ALL
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root
from stackyard.errors import StackyardError

PROJECT = "bench-api"
NETWORK = "bench-api-net"
PASSWORD = "bench-api-password"
PREFIX = "bench-api-"
BATCH = 20  # servers per Nova multi-create request; the devcloud builds about one a second
PROVIDER = "devcloud"
LIMIT = 50
LISTING = f"/api/v1/providers/{PROVIDER}/instances"
WARMUP = 3  # requests per thread before the clock starts
REQUEST_TIMEOUT = 30.0
READY_TIMEOUT = 180.0


# -- devcloud and servers --------------------------------------------------------------------------


def connect(
    creds: Credentials, *, username: str, password: str, project: str
) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=creds.auth_url,
        username=username,
        password=password,
        project_name=project,
        user_domain_name=creds.user_domain_name,
        project_domain_name=creds.project_domain_name,
        region_name=creds.region_name,
        api_timeout=REQUEST_TIMEOUT,
        load_yaml_config=False,
        load_envvars=False,
    )


def admin_connection(creds: Credentials) -> openstack.connection.Connection:
    return connect(creds, username=creds.username, password=creds.password, project=creds.project_name)


def bench_servers(conn: openstack.connection.Connection) -> list[Any]:
    return [s for s in conn.compute.servers() if (s.name or "").startswith(PREFIX)]


def ensure_project(admin: openstack.connection.Connection, creds: Credentials, servers: int) -> Any:
    """The bench project and its user, with quotas for `servers` tiny servers (never below its usage)."""
    project = admin.identity.find_project(PROJECT, domain_id="default")
    if project is None:
        project = admin.identity.create_project(name=PROJECT, domain_id="default")
    user = admin.identity.find_user(PROJECT, domain_id="default")
    if user is None:
        user = admin.identity.create_user(name=PROJECT, password=PASSWORD, domain_id="default")
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    conn = connect(creds, username=PROJECT, password=PASSWORD, project=PROJECT)
    room = max(servers, len(list(conn.compute.servers()))) + 50
    admin.set_compute_quotas(project.id, instances=room, cores=room, ram=room * 512)
    admin.set_network_quotas(project.id, port=room * 2, network=5, subnet=5)
    return conn


def ensure_network(conn: openstack.connection.Connection) -> Any:
    """The bench project's own network: the shared `private` /24 runs out of addresses at 253 servers."""
    network = conn.network.find_network(NETWORK)
    if network is None:
        network = conn.network.create_network(name=NETWORK)
    if not list(conn.network.subnets(network_id=network.id)):
        conn.network.create_subnet(
            name=NETWORK, network_id=network.id, ip_version=4, cidr="10.20.0.0/20", gateway_ip="10.20.0.1"
        )
    return network


def ensure_servers(conn: openstack.connection.Connection, count: int) -> int:
    """Create the missing bench servers in batches and wait for each batch to be ACTIVE; servers that
    end in ERROR are deleted and made again. Returns how many this run created."""
    image = conn.image.find_image("devcloud-raw", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    network = ensure_network(conn)
    began = time.monotonic()
    deadline = began + 600 + 6 * count
    created = failed = 0
    last_report = 0.0
    while True:
        servers = bench_servers(conn)
        broken = [s for s in servers if s.status == "ERROR"]
        for server in broken:
            conn.compute.delete_server(server, ignore_missing=True)
        failed += len(broken)
        if failed > 10 + count // 10:
            raise SystemExit(f"setup failed: {failed} bench servers went to ERROR")
        active = sum(1 for s in servers if s.status == "ACTIVE")
        building = sum(1 for s in servers if s.status == "BUILD")
        if active >= count:
            if created:
                print(f"{active} bench servers ACTIVE ({time.monotonic() - began:.0f} s)", flush=True)
            return created
        if time.monotonic() > deadline:
            raise SystemExit(
                f"setup failed: only {active}/{count} bench servers ACTIVE after {deadline - began:.0f} s"
            )
        missing = count - active - building
        if missing > 0 and building == 0:
            batch = min(BATCH, missing)
            conn.compute.create_server(
                name=f"{PREFIX}{active:04d}",
                image_id=image.id,
                flavor_id=flavor.id,
                networks=[{"uuid": network.id}],
                min_count=batch,
                max_count=batch,
            )
            created += batch
            building += batch
        now = time.monotonic()
        if now - last_report >= 10:
            print(
                f"bench servers: {active}/{count} ACTIVE, {building} building ({now - began:.0f} s)",
                flush=True,
            )
            last_report = now
        time.sleep(2)


def delete_servers(conn: openstack.connection.Connection) -> None:
    servers = bench_servers(conn)
    for server in servers:
        conn.compute.delete_server(server, ignore_missing=True)
    deadline = time.monotonic() + 60 + len(servers)
    while servers and time.monotonic() < deadline:
        time.sleep(2)
        servers = bench_servers(conn)
    if servers:
        print(f"warning: {len(servers)} bench servers still deleting (Nova finishes asynchronously)")
    else:
        print("bench servers deleted")


# -- the API server ------------------------------------------------------------------------------


def free_port(wanted: int = 0) -> int:
    """`wanted` if nothing listens on it (any free port for 0): another server there would answer
    /readyz in our server's place."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError as exc:
            raise SystemExit(f"setup failed: port {wanted} is not free ({exc.strerror})") from None
        port: int = sock.getsockname()[1]
        return port


def stackyard_command() -> str:
    found = shutil.which("stackyard") or str(Path(sys.executable).with_name("stackyard"))
    if not Path(found).exists():
        raise SystemExit("setup failed: no `stackyard` executable (run through `uv run`)")
    return found


class ApiServer:
    """`stackyard serve` in its own session, on loopback, with a throwaway data directory."""

    def __init__(self, workers: int, port: int) -> None:
        self.workers = workers
        self.port = port
        self.workdir = Path(tempfile.mkdtemp(prefix="stackyard-api-load-"))
        # No clouds (any clouds.yaml is ignored), so the devcloud is the one provider; no rate limit.
        config = {"providers": {"clouds": []}, "api": {"rate_limit": 0}}
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(config))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OS_", "STACKYARD_")) or k == "STACKYARD_DEVCLOUD_DIR"
        }
        env["STACKYARD_CONFIG"] = str(self.workdir / "config.yaml")
        env["STACKYARD_DATA_DIR"] = str(self.workdir / "data")
        # The workers' metric samples go here rather than a directory serve would leave behind.
        env[MULTIPROC_ENV] = str(self.workdir / "metrics")
        (self.workdir / "metrics").mkdir()
        self.env = env
        self.log = self.workdir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def create_key(self) -> str:
        argv = [stackyard_command(), "apikeys", "create", "bench", "--role", "admin", "-f", "json"]
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise SystemExit(f"setup failed: {shlex.join(argv)}: {result.stderr.strip()}")
        key: str = json.loads(result.stdout)["key"]
        return key

    def start(self) -> None:
        argv = [
            stackyard_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise SystemExit(
                        f"setup failed: stackyard serve exited ({self.process.returncode})\n{self.tail()}"
                    )
                try:
                    response = client.get("/readyz")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(0.5)
        raise SystemExit(f"setup failed: /readyz not ready in {READY_TIMEOUT:.0f} s ({last})\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the server's process group (uvicorn and its workers), SIGKILL if it lingers."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


# -- the load generator ------------------------------------------------------------------------------


@dataclass
class Worker:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    examples: list[str] = field(default_factory=list)
    setup_error: str | None = None
    items: int = 0
    finished: float = 0.0


@dataclass
class Run:
    label: str
    latencies: list[float]
    errors: int
    examples: list[str]
    seconds: float
    items: int

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        """Nearest rank, in milliseconds (NaN when nothing succeeded)."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


class HttpStatusError(Exception):
    pass


def drive(
    label: str,
    open_client: Callable[[], Any],
    call: Callable[[Any], int],
    close: Callable[[Any], None],
    concurrency: int,
    duration: float,
) -> Run:
    """`concurrency` threads each open a client, warm it up, then call for `duration` seconds together.

    `call` returns the number of items listed and raises on any failure (counted as an error). Only
    successful calls give latencies; a request started before the deadline is waited for.
    """
    barrier = threading.Barrier(concurrency + 1)
    slots = [Worker() for _ in range(concurrency)]

    def work(slot: Worker) -> None:
        client = None
        try:
            client = open_client()
            for _ in range(WARMUP):
                slot.items = call(client)
        except Exception as exc:  # noqa: BLE001 (reported as a setup failure by the main thread)
            slot.setup_error = f"{type(exc).__name__}: {exc}"
            barrier.abort()
        try:
            if slot.setup_error is not None:
                return
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return
            deadline = time.perf_counter() + duration
            while True:
                began = time.perf_counter()
                if began >= deadline:
                    break
                try:
                    call(client)
                    slot.latencies.append(time.perf_counter() - began)
                except Exception as exc:  # noqa: BLE001 (any failure is an error of the path under test)
                    slot.errors += 1
                    if len(slot.examples) < 3:
                        slot.examples.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            slot.finished = time.perf_counter()
        finally:
            if client is not None:
                close(client)

    threads = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in slots]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=120 + WARMUP * REQUEST_TIMEOUT)
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT)
        reasons = sorted({slot.setup_error for slot in slots if slot.setup_error}) or ["setup timed out"]
        raise SystemExit(f"setup failed: {label}: " + "; ".join(reasons)) from None
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=duration + REQUEST_TIMEOUT + 10)
    if any(thread.is_alive() for thread in threads):
        print(f"warning: {label}: a thread is stuck past its request timeout; its samples are dropped")
    done = [slot for slot in slots if slot.finished]
    seconds = max((slot.finished for slot in done), default=started + duration) - started
    return Run(
        label=label,
        latencies=[latency for slot in done for latency in slot.latencies],
        errors=sum(slot.errors for slot in done),
        examples=[example for slot in done for example in slot.examples][:5],
        seconds=seconds,
        items=max(slot.items for slot in slots),
    )


def api_run(url: str, key: str, concurrency: int, duration: float, workers: int) -> Run:
    def open_client() -> httpx.Client:
        return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT)

    def call(client: httpx.Client) -> int:
        response = client.get(LISTING, params={"limit": LIMIT})
        if response.status_code != 200:
            raise HttpStatusError(f"HTTP {response.status_code}: {response.text[:200]}")
        return len(response.json()["items"])

    return drive(f"API ({workers} workers)", open_client, call, lambda c: c.close(), concurrency, duration)


def sdk_run(creds: Credentials, concurrency: int, duration: float) -> Run:
    def open_client() -> openstack.connection.Connection:
        conn = admin_connection(creds)
        conn.authorize()
        return conn

    def call(conn: openstack.connection.Connection) -> int:
        return len(list(conn.compute.servers(details=True, all_projects=True, limit=LIMIT, paginated=False)))

    return drive("openstacksdk direct", open_client, call, lambda c: c.close(), concurrency, duration)


# -- main ---------------------------------------------------------------------------------------------


def reproduce(args: argparse.Namespace) -> str:
    argv = [
        "uv",
        "run",
        "python",
        "benchmarks/api_load.py",
        "--instances",
        str(args.instances),
        "--concurrency",
        str(args.concurrency),
        "--duration",
        f"{args.duration:g}",
        "--workers",
        str(args.workers),
    ]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    if args.keep:
        argv.append("--keep")
    return shlex.join(argv)


def report(runs: list[Run], args: argparse.Namespace, bench: int, visible: int) -> None:
    print(
        f"\nservers: {bench} bench servers in project {PROJECT}, {visible} visible to admin in all projects; "
        f"{args.concurrency} client threads, {args.duration:g} s per path, limit={LIMIT}"
    )
    print("req/s and latencies count successful (HTTP 200 / no exception) requests only")
    print(f"{'path':24} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'items':>6}")
    for run in runs:
        print(
            f"{run.label:24} {run.requests:9d} {run.rate:8.1f} {run.percentile(50):8.1f} "
            f"{run.percentile(99):8.1f} {run.errors:7d} {run.items:6d}"
        )
    api, sdk = runs
    for run in runs:
        for example in run.examples:
            print(f"  {run.label} error: {example}")
    rate_ratio = api.rate / sdk.rate if sdk.rate else math.nan
    p50_ratio = api.percentile(50) / sdk.percentile(50) if sdk.latencies else math.nan
    print(f"ratio API/SDK: req/s {rate_ratio:.2f}x, p50 latency {p50_ratio:.2f}x")
    print(f"reproduce: {reproduce(args)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=500, help="Bench servers to list (default 500).")
    parser.add_argument("--concurrency", type=int, default=8, help="Client threads per path (default 8).")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds per path (default 30).")
    parser.add_argument("--workers", type=int, default=2, help="`stackyard serve` workers (default 2).")
    parser.add_argument("--port", type=int, default=None, help="API port (default: a free one).")
    parser.add_argument("--keep", action="store_true", help="Keep the bench servers for another run.")
    args = parser.parse_args()
    if args.instances < 1 or args.concurrency < 1 or args.duration <= 0 or args.workers < 1:
        parser.error("--instances, --concurrency, --duration and --workers must be positive")

    port = free_port(args.port or 0)
    server: ApiServer | None = None
    member: openstack.connection.Connection | None = None
    try:
        try:
            cloud = Devcloud(Layout(default_root()), report=lambda msg: print(f"devcloud: {msg}", flush=True))
            cloud.up(UpOptions(ALL))
            creds = credentials(cloud, "admin")
            admin = admin_connection(creds)
            member = ensure_project(admin, creds, args.instances)
            ensure_servers(member, args.instances)
            bench = len(bench_servers(member))
            visible = sum(1 for _ in admin.compute.servers(all_projects=True))
            server = ApiServer(args.workers, port)
            key = server.create_key()
            server.start()
            server.wait_ready()
        except (StackyardError, openstack.exceptions.SDKException) as exc:
            raise SystemExit(f"setup failed: {exc}") from None
        print(
            f"stackyard serve ready on {server.url} ({args.workers} workers); {bench} bench servers",
            flush=True,
        )
        api = api_run(server.url, key, args.concurrency, args.duration, args.workers)
        if not server.is_alive():
            raise SystemExit(f"stackyard serve died during the run\n{server.tail()}")
        sdk = sdk_run(creds, args.concurrency, args.duration)
        report([api, sdk], args, bench, visible)
        if not api.latencies or not sdk.latencies:
            raise SystemExit("a path had no successful request")
    finally:
        if server is not None:
            server.stop()
        if member is not None and not args.keep:
            delete_servers(member)


if __name__ == "__main__":
    main()
