"""ML2 mechanism driver that binds every port on every host and marks it ACTIVE, for an agentless devcloud."""

from __future__ import annotations

from typing import Any

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins import directory
from neutron_lib.plugins.ml2 import api
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# What a port bound by the Open vSwitch agent driver looks like to Nova; nothing reads it here,
# since the fake hypervisor plugs nothing, but clients that inspect ports see familiar values.
VIF_DETAILS: dict[str, Any] = {
    portbindings.CAP_PORT_FILTER: True,
    portbindings.OVS_HYBRID_PLUG: False,
    portbindings.VIF_DETAILS_CONNECTIVITY: portbindings.CONNECTIVITY_L2,
    portbindings.VIF_DETAILS_BRIDGE_NAME: "br-int",
    portbindings.OVS_DATAPATH_TYPE: "system",
}

UNBOUND_VIF_TYPES = (portbindings.VIF_TYPE_UNBOUND, portbindings.VIF_TYPE_BINDING_FAILED)


def _status_for(port: dict[str, Any]) -> str:
    # An OVS agent leaves an administratively disabled port DOWN; keep that behaviour.
    return constants.PORT_STATUS_ACTIVE if port.get("admin_state_up", True) else constants.PORT_STATUS_DOWN


class BindAllMechanismDriver(api.MechanismDriver):
    """Bind any port, any vnic type, on any host, to the first segment of any network type.

    No agent ever reports these ports wired, so the binding itself sets the status: see
    `bind_port`. Register as `stackyard_bindall` in `neutron.ml2.mechanism_drivers`.
    """

    def initialize(self) -> None:
        LOG.info("stackyard_bindall: binding every port without agents (devcloud only)")

    @property
    def connectivity(self) -> str:
        # NOTE: MechanismManager._check_drivers_connectivity (neutron/plugins/ml2/managers.py)
        # lets only "l2" drivers bind ports without fixed IPs; the default "legacy" would leave
        # IP-less ports (no-subnet networks, port_security off) failing to bind.
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context: api.PortContext) -> None:
        segments = context.segments_to_bind
        if not segments:
            return
        # NOTE: ML2 calls bind_port only for ports with a host (Ml2Plugin._should_bind_port).
        # Any segment works on a fake fabric; the first one is the network's only one in practice.
        segment = segments[0]
        port = context.current
        # NOTE: PortContext.set_binding(..., status=...) (neutron/plugins/ml2/driver_context.py)
        # stores `_new_port_status`; Ml2Plugin._commit_port_binding writes it to the port row
        # in the same transaction that commits the binding. The status change fires Neutron's
        # Nova notifier (record_port_status_changed), so Nova gets network-vif-plugged as with
        # an agent. Provisioning blocks are not needed: they are added only when an L2 or DHCP
        # agent exists (mech_agent._insert_provisioning_block, _setup_dhcp_agent_provisioning_component).
        # An administratively disabled port keeps the DOWN status ML2 gave it (None: no change).
        status = _status_for(port)
        context.set_binding(
            segment[api.ID],
            portbindings.VIF_TYPE_OVS,
            dict(VIF_DETAILS),
            status=status if status == constants.PORT_STATUS_ACTIVE else None,
        )
        LOG.debug(
            "stackyard_bindall bound port %s on host %s to %s segment %s (status %s)",
            port["id"],
            context.host,
            segment.get(api.NETWORK_TYPE),
            segment[api.ID],
            status,
        )

    def update_port_postcommit(self, context: api.PortContext) -> None:
        # A bound port is only rebound when its host, vnic type or profile changes, so an
        # admin_state_up toggle alone must move the status here, as an agent would.
        port = context.current
        original = context.original
        if original is None or original.get("admin_state_up") == port.get("admin_state_up"):
            return
        if not context.host or context.vif_type in UNBOUND_VIF_TYPES:
            return
        if port.get("device_owner") == constants.DEVICE_OWNER_DVR_INTERFACE:
            return
        status = _status_for(port)
        if port.get("status") == status:
            return
        # NOTE: Ml2Plugin.update_port_status (neutron/plugins/ml2/plugin.py) is the call agents
        # make over RPC; it runs the mechanism drivers' update_port_*commit again (a no-op here,
        # since admin_state_up no longer differs) and notifies Nova. Postcommit runs outside the
        # port transaction, which update_port_statuses' transaction_guard requires.
        plugin = directory.get_plugin()
        plugin.update_port_status(context.plugin_context, port["id"], status, context.host)
