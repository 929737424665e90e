"""Create the devcloud's Keystone catalog, users, flavors, image and networks (runs in the OpenStack venv).

Reads a JSON document on stdin: {"phase": "identity" | "resources", "auth_url", "admin_password",
"demo_password", "service_password", "region", "endpoints": {type: url}, "components": [...]}.
Every step looks its object up first, so running it again changes nothing.
"""

import hashlib
import io
import json
import sys

import openstack

SERVICE_USERS = ("nova", "neutron", "glance", "cinder", "placement", "swift")
SERVICE_NAMES = {
    "compute": "nova",
    "placement": "placement",
    "network": "neutron",
    "image": "glance",
    "block-storage": "cinderv3",
    "volumev3": "cinder",
    "object-store": "swift",
}
FLAVORS = (
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
)
IMAGE_NAME = "devcloud-raw"
IMAGE_SIZE = 1024 * 1024


def image_bytes(size=IMAGE_SIZE):
    """Deterministic content: SHA-256 of 'devcloud-image:<block index>' repeated to `size` bytes."""
    out = bytearray()
    index = 0
    while len(out) < size:
        out += hashlib.sha256(f"devcloud-image:{index}".encode()).digest()
        index += 1
    return bytes(out[:size])


def connect(doc, project="admin"):
    return openstack.connect(
        auth_url=doc["auth_url"],
        username="admin",
        password=doc["admin_password"],
        project_name=project,
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=doc["region"],
        identity_api_version="3",
        load_yaml_config=False,
        load_envvars=False,
    )


def ensure_role(conn, name):
    return conn.identity.find_role(name) or conn.identity.create_role(name=name)


def ensure_project(conn, name, description):
    found = conn.identity.find_project(name, domain_id="default")
    return found or conn.identity.create_project(name=name, domain_id="default", description=description)


def ensure_user(conn, name, password, project):
    found = conn.identity.find_user(name, domain_id="default")
    if found:
        # Keep the password in line with the secrets file (a snapshot may come from elsewhere).
        return conn.identity.update_user(found, password=password)
    return conn.identity.create_user(
        name=name, password=password, domain_id="default", default_project_id=project.id
    )


def grant(conn, project, user, role):
    conn.identity.assign_project_role_to_user(project, user, role)


def ensure_endpoints(conn, region, endpoints):
    for service_type, url in endpoints.items():
        name = SERVICE_NAMES.get(service_type, service_type)
        service = next((s for s in conn.identity.services() if s.type == service_type), None)
        if service is None:
            service = conn.identity.create_service(name=name, type=service_type, enabled=True)
        existing = {e.interface: e for e in conn.identity.endpoints(service_id=service.id)}
        for interface in ("public", "internal", "admin"):
            endpoint = existing.get(interface)
            if endpoint is None:
                conn.identity.create_endpoint(
                    service_id=service.id, interface=interface, url=url, region_id=region
                )
            elif endpoint.url != url:
                conn.identity.update_endpoint(endpoint, url=url)


def phase_identity(doc):
    conn = connect(doc)
    admin_role = ensure_role(conn, "admin")
    member = ensure_role(conn, "member")
    ensure_role(conn, "reader")
    service_role = ensure_role(conn, "service")
    service_project = ensure_project(conn, "service", "OpenStack service users")
    for name in SERVICE_USERS:
        user = ensure_user(conn, name, doc["service_password"], service_project)
        grant(conn, service_project, user, service_role)
        grant(conn, service_project, user, admin_role)
    demo = ensure_project(conn, "demo", "devcloud demo project")
    demo_user = ensure_user(conn, "demo", doc["demo_password"], demo)
    grant(conn, demo, demo_user, member)
    admin_project = conn.identity.find_project("admin", domain_id="default")
    admin_user = conn.identity.find_user("admin", domain_id="default")
    grant(conn, demo, admin_user, admin_role)
    grant(conn, admin_project, admin_user, admin_role)
    ensure_endpoints(conn, doc["region"], doc["endpoints"])


def ensure_flavors(conn):
    existing = {f.name for f in conn.compute.flavors(is_public=None)}
    for flavor_id, name, ram, vcpus, disk in FLAVORS:
        if name not in existing:
            conn.compute.create_flavor(id=flavor_id, name=name, ram=ram, vcpus=vcpus, disk=disk)


def ensure_image(conn):
    if conn.image.find_image(IMAGE_NAME) is not None:
        return
    conn.image.create_image(
        name=IMAGE_NAME,
        data=io.BytesIO(image_bytes()),
        disk_format="raw",
        container_format="bare",
        visibility="public",
        wait=True,
        timeout=120,
    )


def ensure_networks(conn):
    net = conn.network
    public = net.find_network("public")
    if public is None:
        public = net.create_network(
            name="public",
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="public",
        )
    if not list(net.subnets(network_id=public.id)):
        net.create_subnet(
            name="public-subnet",
            network_id=public.id,
            ip_version=4,
            cidr="172.24.4.0/24",
            gateway_ip="172.24.4.1",
            is_dhcp_enabled=False,
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}],
        )
    private = net.find_network("private")
    if private is None:
        private = net.create_network(name="private", is_shared=True)
    subnets = list(net.subnets(network_id=private.id))
    if subnets:
        private_subnet = subnets[0]
    else:
        private_subnet = net.create_subnet(
            name="private-subnet",
            network_id=private.id,
            ip_version=4,
            cidr="10.0.0.0/24",
            gateway_ip="10.0.0.1",
            dns_nameservers=[],
        )
    router = net.find_router("router1")
    if router is None:
        router = net.create_router(name="router1", external_gateway_info={"network_id": public.id})
        net.add_interface_to_router(router, subnet_id=private_subnet.id)


def phase_resources(doc):
    conn = connect(doc)
    components = set(doc["components"])
    if "compute-api" in components:
        ensure_flavors(conn)
    if "image" in components:
        ensure_image(conn)
    if "network" in components:
        ensure_networks(conn)


def main():
    doc = json.load(sys.stdin)
    {"identity": phase_identity, "resources": phase_resources}[doc["phase"]](doc)
    print(json.dumps({"ok": True, "phase": doc["phase"]}))


if __name__ == "__main__":
    main()
