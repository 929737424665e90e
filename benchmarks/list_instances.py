"""`stackyard instances list -f json` vs `openstack server list -f json` on the devcloud, side by side.

Run: uv run python benchmarks/list_instances.py [--sizes 100,500] [--runs 3]
Creates a `bench-list` project holding the largest size of tiny servers (Nova multi-create,
kept between runs), then for each size times both commands (median of --runs, alternating) and
reads each process's peak RSS. Prints the time and memory ratios (openstack / stackyard) and how
each tool's memory grows with the number of servers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import openstack
import openstack.connection
import yaml

from stackyard.devcloud.access import credentials
from stackyard.devcloud.components import ALL
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root

PROJECT = "bench-list"
PASSWORD = "bench-list-password"


def admin_connection(cloud: Devcloud) -> openstack.connection.Connection:
    creds = credentials(cloud, "admin")
    return openstack.connect(
        auth_url=creds.auth_url,
        username=creds.username,
        password=creds.password,
        project_name=creds.project_name,
        user_domain_name="Default",
        project_domain_name="Default",
        load_yaml_config=False,
        load_envvars=False,
    )


def ensure_project(admin: openstack.connection.Connection, servers: int) -> None:
    project = admin.identity.find_project(PROJECT, domain_id="default")
    if project is None:
        project = admin.identity.create_project(name=PROJECT, domain_id="default")
    user = admin.identity.find_user(PROJECT, domain_id="default")
    if user is None:
        user = admin.identity.create_user(name=PROJECT, password=PASSWORD, domain_id="default")
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    admin.set_compute_quotas(project.id, instances=servers + 50, cores=servers + 50, ram=(servers + 50) * 512)
    admin.set_network_quotas(project.id, port=servers * 2 + 50)


def member_connection(auth_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=auth_url,
        username=PROJECT,
        password=PASSWORD,
        project_name=PROJECT,
        user_domain_name="Default",
        project_domain_name="Default",
        load_yaml_config=False,
        load_envvars=False,
    )


def grow_to(conn: openstack.connection.Connection, count: int) -> None:
    """Multi-create tiny servers (100 per request) until the project holds `count`, then wait out BUILD."""
    image = conn.image.find_image("devcloud-raw", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    network = conn.network.find_network("private", ignore_missing=False)
    have = sum(1 for _ in conn.compute.servers())
    while have < count:
        batch = min(100, count - have)
        conn.compute.create_server(
            name=f"bench-{have:04d}",
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": network.id}],
            min_count=batch,
            max_count=batch,
        )
        have += batch
        print(f"requested {have} servers", flush=True)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        building = sum(1 for s in conn.compute.servers() if s.status == "BUILD")
        if not building:
            return
        print(f"{building} servers still building", flush=True)
        time.sleep(10)
    raise SystemExit("servers did not finish building in 30 minutes")


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and output size of one run."""
    began = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - began
        if status != 0:
            raise SystemExit(f"{argv[0]} failed: {process.stderr.read().decode() if process.stderr else ''}")
        size = out.tell()
    return seconds, usage.ru_maxrss, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,500")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="Keep the servers for another run.")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    cloud = Devcloud(Layout(default_root()))
    cloud.up(UpOptions(ALL))
    admin = admin_connection(cloud)
    ensure_project(admin, sizes[-1])
    creds = credentials(cloud, "admin")
    conn = member_connection(creds.auth_url)
    workdir = Path(tempfile.mkdtemp())
    clouds = {
        "clouds": {
            "bench": {
                "auth": {
                    "auth_url": creds.auth_url,
                    "username": PROJECT,
                    "password": PASSWORD,
                    "project_name": PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": creds.region_name,
                "identity_api_version": 3,
            }
        }
    }
    (workdir / "clouds.yaml").write_text(yaml.safe_dump(clouds))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(workdir / "clouds.yaml")
    stackyard = [
        shutil.which("stackyard") or "stackyard",
        "instances",
        "list",
        "--cloud",
        "bench",
        "-f",
        "json",
    ]
    osc = [shutil.which("openstack") or "openstack", "--os-cloud", "bench", "server", "list", "-f", "json"]
    results: dict[tuple[str, int], tuple[float, int]] = {}
    for size in sizes:
        grow_to(conn, size)
        runs: dict[str, list[tuple[float, int, int]]] = {"stackyard": [], "openstack": []}
        for _ in range(args.runs):
            runs["stackyard"].append(measure(stackyard, env))
            runs["openstack"].append(measure(osc, env))
        for tool, samples in runs.items():
            results[(tool, size)] = (statistics.median(s[0] for s in samples), max(s[1] for s in samples))
    print(f"\n{'servers':>8} {'tool':>10} {'median s':>9} {'peak RSS MiB':>13}")
    for (tool, size), (seconds, rss) in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{size:8d} {tool:>10} {seconds:9.2f} {rss / 1024:13.1f}")
    for size in sizes:
        ours, theirs = results[("stackyard", size)], results[("openstack", size)]
        print(
            f"{size} servers: openstack/stackyard time ratio {theirs[0] / ours[0]:.2f}x, "
            f"memory ratio {theirs[1] / ours[1]:.2f}x"
        )
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        for tool in ("stackyard", "openstack"):
            grow = (results[(tool, high)][1] - results[(tool, low)][1]) / 1024
            print(f"{tool}: peak RSS grows {grow:+.1f} MiB from {low} to {high} servers")
    if not args.keep:
        for server in list(conn.compute.servers()):
            conn.compute.delete_server(server, ignore_missing=True)
        print("bench servers deleted (asynchronously by Nova)")


if __name__ == "__main__":
    main()
