"""Alias package installed as nova.virt.stackyard_osplugin so Nova's driver loader finds our driver."""

# NOTE: nova.virt.driver.load_compute_driver (nova 34) imports 'nova.virt.' + compute_driver
# with oslo_utils.importutils.import_object, not import_object_ns, so a dotted path outside
# nova.virt fails with ImportError. The wheel puts this package at nova/virt/stackyard_osplugin/,
# which makes `compute_driver = stackyard_osplugin.virt.SnapshotFakeDriver` resolve.
