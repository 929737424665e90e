"""Network inventory: Neutron ports of a set of VMs as per-node interface configs."""
