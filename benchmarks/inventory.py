"""Inventory sync of many VMs: stackyard (one ports listing, one servers listing) vs a per-VM loop.

Run: uv run python benchmarks/inventory.py [--vms 200] [--batch 25] [--repeat 3] [--keep]
Creates a project-owned network with a /22 subnet and --vms servers on it (multi-create in batches of
--batch) in the running devcloud (started if needed). Then, in one run, --repeat times each:
  1. stackyard's sync computation (`InventoryService.compute`: subnet, ports of every VM in one
     Neutron listing, names from one Nova listing, node configs);
  2. the per-VM loop the original operator runs: for each VM one `GET /ports?device_id=` and one
     `GET /servers/{id}`, then the same node configs from what it read.
Both are checked to give the same configs. Prints the median wall time, the API calls of each and
the ratios. The servers and the network are deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections import Counter

import openstack
import openstack.connection

from stackyard.cloud.models import FixedIp, Port, ServerRef, Subnet
from stackyard.cloud.ports import PortGateway
from stackyard.cloud.session import CallRecord, open_session
from stackyard.cloud.status import PortStatus
from stackyard.db.engine import make_engine, session_factory
from stackyard.devcloud.access import Credentials, cloud_entry, credentials
from stackyard.devcloud.components import ALL
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root
from stackyard.inventory.models import NodeConfig, build_node_configs
from stackyard.inventory.service import InventoryService, SyncRequest

RUN = uuid.uuid4().hex[:6]


def devcloud_up() -> Devcloud:
    cloud = Devcloud(Layout(default_root()), report=lambda msg: print(f"devcloud: {msg}", file=sys.stderr))
    cloud.up(UpOptions(ALL))
    return cloud


def sdk(creds: Credentials) -> openstack.connection.Connection:
    return openstack.connect(**cloud_entry(creds), load_yaml_config=False, load_envvars=False)


def create_servers(
    conn: openstack.connection.Connection, network_id: str, count: int, batch: int
) -> list[str]:
    image = conn.image.find_image("devcloud-raw", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    made = 0
    while made < count:
        size = min(batch, count - made)
        conn.compute.create_server(
            name=f"bench-inv-{RUN}-{made:03d}",
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": network_id}],
            min_count=size,
            max_count=size,
        )
        made += size
        print(f"requested {made}/{count} servers", file=sys.stderr)
    deadline = time.monotonic() + 1800
    while True:
        servers = list(conn.compute.servers(name=f"^bench-inv-{RUN}-"))
        active = [s for s in servers if s.status == "ACTIVE"]
        failed = [s for s in servers if s.status == "ERROR"]
        if failed:
            raise SystemExit(f"{len(failed)} servers went to ERROR, e.g. {failed[0].id}")
        if len(active) >= count:
            return sorted(str(s.id) for s in active)
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(active)}/{count} servers became ACTIVE in 30 min")
        time.sleep(5)


def per_vm_loop(
    conn: openstack.connection.Connection, vm_ids: list[str], subnet: Subnet
) -> tuple[list[NodeConfig], int]:
    """One ports call and one server call per VM, as the original operator does."""
    calls = 0
    ports: list[Port] = []
    servers: dict[str, ServerRef] = {}
    for vm in vm_ids:
        for port in conn.network.ports(device_id=vm):
            ports.append(
                Port(
                    id=str(port.id),
                    device_id=str(port.device_id),
                    mac_address=str(port.mac_address),
                    status=PortStatus.from_openstack(port.status),
                    network_id=str(port.network_id),
                    fixed_ips=tuple(
                        FixedIp(ip.get("subnet_id"), str(ip["ip_address"])) for ip in port.fixed_ips
                    ),
                )
            )
        calls += 1
        server = conn.compute.get_server(vm)
        calls += 1
        servers[vm] = ServerRef(vm, server.name, dict(server.metadata or {}))
    built = build_node_configs(vm_ids, ports, servers, subnet)
    return list(built.configs), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    cloud = devcloud_up()
    creds = credentials(cloud, "admin")
    conn = sdk(creds)
    project = str(conn.current_project_id)
    # The admin project's default quotas (10 instances) are far below --vms: lift them for the run.
    compute_before = conn.get_compute_quotas(project)
    network_before = conn.get_network_quotas(project)
    conn.set_compute_quotas(project, instances=-1, cores=-1, ram=-1)
    conn.set_network_quotas(project, port=-1)
    network = conn.network.create_network(name=f"bench-inv-{RUN}")
    subnet_record = conn.network.create_subnet(
        network_id=network.id, name=f"bench-inv-{RUN}", cidr="10.96.0.0/22", ip_version=4
    )
    try:
        vm_ids = create_servers(conn, str(network.id), args.vms, args.batch)
        records: list[CallRecord] = []
        session = open_session(sdk(creds), name="bench", on_call=records.append)
        gateway = PortGateway(session)
        service = InventoryService(session_factory(make_engine("sqlite://")), lambda _cloud: gateway)
        request = SyncRequest(
            scope="bench",
            cloud="devcloud",
            project_id=str(conn.current_project_id),
            instance_ids=tuple(vm_ids),
            subnet_id=str(subnet_record.id),
        )
        ours: list[float] = []
        theirs: list[float] = []
        our_calls: Counter[str] = Counter()
        loop_calls = 0
        for round_number in range(args.repeat):
            service._subnets.clear()  # each round resolves the subnet again, as a cold sync does
            records.clear()
            began = time.perf_counter()
            subnet, configs, excluded = service.compute(request)
            ours.append(time.perf_counter() - began)
            our_calls = Counter(f"{r.service} {r.operation}" for r in records)
            began = time.perf_counter()
            loop_configs, loop_calls = per_vm_loop(conn, vm_ids, subnet)
            theirs.append(time.perf_counter() - began)
            assert not excluded, excluded[:3]
            assert [c.payload() for c in configs] == [c.payload() for c in loop_configs], "configs differ"
            print(f"round {round_number + 1}: stackyard {ours[-1]:.2f} s, per-VM loop {theirs[-1]:.2f} s")
        total = sum(our_calls.values())
        print(f"\n{args.vms} VMs, one port each, median of {args.repeat}")
        print(f"{'':28}{'wall s':>10}{'API calls':>12}")
        print(f"{'stackyard sync':28}{statistics.median(ours):>10.2f}{total:>12}")
        print(f"{'per-VM loop':28}{statistics.median(theirs):>10.2f}{loop_calls:>12}")
        print(f"stackyard calls: {dict(our_calls)}")
        print(
            f"\nper-VM loop / stackyard wall time: {statistics.median(theirs) / statistics.median(ours):.1f}x"
        )
        print(f"per-VM loop / stackyard API calls: {loop_calls / total:.1f}x")
    finally:
        if not args.keep:
            for server in conn.compute.servers(name=f"^bench-inv-{RUN}-"):
                conn.compute.delete_server(server, ignore_missing=True)
            deadline = time.monotonic() + 900
            while list(conn.compute.servers(name=f"^bench-inv-{RUN}-")) and time.monotonic() < deadline:
                time.sleep(5)
            for port in conn.network.ports(network_id=network.id):
                conn.network.delete_port(port, ignore_missing=True)
            conn.network.delete_network(network, ignore_missing=True)
        conn.set_compute_quotas(
            project,
            instances=compute_before.instances,
            cores=compute_before.cores,
            ram=compute_before.ram,
        )
        conn.set_network_quotas(project, port=network_before.ports)


if __name__ == "__main__":
    main()
