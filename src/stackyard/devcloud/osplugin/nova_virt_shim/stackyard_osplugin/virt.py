"""nova.virt.stackyard_osplugin.virt: re-exports the devcloud driver from the top-level stackyard_osplugin."""

# Absolute import: this names the top-level stackyard_osplugin package, not the alias package.
from stackyard_osplugin.virt import SnapshotFakeDriver

__all__ = ["SnapshotFakeDriver"]
