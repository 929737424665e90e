"""In-process check: Neutron's real ML2 plugin (SQLite) binds every port via stackyard_bindall, ACTIVE.

Run in the OpenStack virtualenv, in its own process (it configures oslo.config's global CONF):
`python -W ignore -m tests.check_ml2` from the osplugin directory. Exits non-zero on the first failure.
"""

import time
import uuid
from typing import Any

from neutron.common import config as n_config
from neutron.conf.plugins.ml2 import config as ml2_config
from neutron.conf.plugins.ml2.drivers import driver_type
from oslo_config import cfg
from oslo_db import options as db_options
from oslo_messaging import transport as om_transport

NETWORK_TYPES = {
    "project-default": {},
    "flat": {"provider:network_type": "flat", "provider:physical_network": "public"},
    "vlan": {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    "vxlan": {"provider:network_type": "vxlan"},
    "geneve": {"provider:network_type": "geneve"},
    "local": {"provider:network_type": "local"},
}


def configure() -> None:
    n_config.register_common_config_options()
    ml2_config.register_ml2_plugin_opts()
    driver_type.register_ml2_drivers_flat_opts()
    driver_type.register_ml2_drivers_vlan_opts()
    driver_type.register_ml2_drivers_vxlan_opts()
    driver_type.register_ml2_drivers_geneve_opts()
    db_options.set_defaults(cfg.CONF, connection="sqlite://")
    # NOTE: oslo.messaging registers transport_url lazily; the fake driver needs no broker.
    cfg.CONF.register_opts(om_transport._transport_opts)
    cfg.CONF([], project="neutron")
    overrides: dict[tuple[str, str | None], Any] = {
        ("core_plugin", None): "ml2",
        ("service_plugins", None): [],
        ("transport_url", None): "fake:/",
        ("notify_nova_on_port_status_changes", None): True,
        ("notify_nova_on_port_data_changes", None): False,
        ("dhcp_agent_notification", None): False,
        ("type_drivers", "ml2"): ["flat", "vlan", "vxlan", "geneve", "local"],
        ("project_network_types", "ml2"): ["vxlan"],
        ("mechanism_drivers", "ml2"): ["stackyard_bindall"],
        ("extension_drivers", "ml2"): ["port_security"],
        ("flat_networks", "ml2_type_flat"): ["*"],
        ("network_vlan_ranges", "ml2_type_vlan"): ["physnet1:100:199"],
        ("vni_ranges", "ml2_type_vxlan"): ["1:1000"],
        ("vni_ranges", "ml2_type_geneve"): ["1:1000"],
    }
    for (name, group), value in overrides.items():
        cfg.CONF.set_override(name, value, group=group)


def main() -> None:
    configure()
    # Imported after configuration: model and plugin modules read CONF at import.
    from neutron import manager
    from neutron.db.migration.models import head  # noqa: F401 (registers every table)
    from neutron_lib import context as n_context
    from neutron_lib import rpc as n_rpc
    from neutron_lib.constants import ATTR_NOT_SPECIFIED
    from neutron_lib.db import api as db_api
    from neutron_lib.db import model_base
    from neutron_lib.plugins import directory

    model_base.BASEV2.metadata.create_all(db_api.CONTEXT_WRITER.get_engine())
    n_rpc.init(cfg.CONF)
    manager.init()
    plugin = directory.get_plugin()
    assert [d.name for d in plugin.mechanism_manager.ordered_mech_drivers] == ["stackyard_bindall"]
    events: list[dict[str, Any]] = []
    # Capture what would go to Nova's os-server-external-events instead of calling Nova.
    plugin.nova_notifier.batch_notifier.callback = events.extend
    ctx = n_context.get_admin_context()

    def create_network(name: str, provider: dict[str, str], index: int) -> dict[str, Any]:
        body = {"name": name, "admin_state_up": True, "shared": False, "project_id": "p1",
                "tenant_id": "p1", "router:external": False, "description": "", **provider}  # fmt: skip
        network = plugin.create_network(ctx, {"network": body})
        subnet = {"network_id": network["id"], "ip_version": 4, "cidr": f"10.{index}.0.0/24", "name": name,
                  "project_id": "p1", "tenant_id": "p1", "enable_dhcp": False, "gateway_ip": None,
                  "allocation_pools": None, "dns_nameservers": [], "host_routes": [], "subnetpool_id": None,
                  "ipv6_ra_mode": None, "ipv6_address_mode": None, "description": "", "segment_id": None,
                  "prefixlen": None, "use_default_subnetpool": False}  # fmt: skip
        plugin.create_subnet(ctx, {"subnet": subnet})
        return network

    def create_port(network_id: str, **extra: Any) -> dict[str, Any]:
        body = {"network_id": network_id, "name": "", "admin_state_up": True, "project_id": "p1",
                "tenant_id": "p1", "device_id": "", "device_owner": "", "mac_address": ATTR_NOT_SPECIFIED,
                "fixed_ips": ATTR_NOT_SPECIFIED, **extra}  # fmt: skip
        return plugin.create_port(ctx, {"port": body})

    def state(port_id: str) -> tuple[str, str]:
        port = plugin.get_port(ctx, port_id)
        return port["status"], port["binding:vif_type"]

    def update(port_id: str, **attrs: Any) -> None:
        plugin.update_port(ctx, port_id, {"port": attrs})

    networks = {name: create_network(name, p, i) for i, (name, p) in enumerate(NETWORK_TYPES.items())}
    assert networks["project-default"]["provider:network_type"] == "vxlan"
    for name, network in networks.items():
        port = create_port(network["id"])
        assert state(port["id"]) == ("DOWN", "unbound"), name
        # What Nova does when it allocates a server's port.
        update(port["id"], **{"binding:host_id": "devcloud", "device_id": str(uuid.uuid4()),
                              "device_owner": "compute:nova"})  # fmt: skip
        assert state(port["id"]) == ("ACTIVE", "ovs"), (name, state(port["id"]))
        print(f"ok  {name:16s} {network['provider:network_type']:7s} bound ovs, ACTIVE")

    port_id = port["id"]
    update(port_id, admin_state_up=False)
    assert state(port_id) == ("DOWN", "ovs"), state(port_id)
    update(port_id, admin_state_up=True)
    assert state(port_id) == ("ACTIVE", "ovs"), state(port_id)
    update(port_id, **{"binding:host_id": ""})
    assert state(port_id) == ("DOWN", "unbound"), state(port_id)
    print("ok  admin_state_up toggles DOWN/ACTIVE; unbinding gives DOWN")

    disabled = create_port(networks["flat"]["id"], admin_state_up=False, device_id=str(uuid.uuid4()),
                           device_owner="compute:nova", **{"binding:host_id": "devcloud"})  # fmt: skip
    assert state(disabled["id"]) == ("DOWN", "ovs"), state(disabled["id"])
    update(disabled["id"], admin_state_up=True)
    assert state(disabled["id"]) == ("ACTIVE", "ovs"), state(disabled["id"])
    print("ok  created admin-down with a host: bound DOWN, ACTIVE once enabled")

    no_ip = create_port(networks["local"]["id"], fixed_ips=[], port_security_enabled=False,
                        device_id=str(uuid.uuid4()), device_owner="compute:nova",
                        **{"binding:host_id": "devcloud"})  # fmt: skip
    assert state(no_ip["id"]) == ("ACTIVE", "ovs"), state(no_ip["id"])
    details = plugin.get_port(ctx, no_ip["id"])["binding:vif_details"]
    assert details["port_filter"] is True and details["connectivity"] == "l2", details
    print("ok  port without fixed IPs binds (connectivity l2)")

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(events) < 11:
        time.sleep(0.2)
    names = [event["name"] for event in events]
    assert names.count("network-vif-plugged") == 9 and names.count("network-vif-unplugged") == 2, names
    print(f"ok  Nova notified: {names.count('network-vif-plugged')} plugged, 2 unplugged")


if __name__ == "__main__":
    main()
