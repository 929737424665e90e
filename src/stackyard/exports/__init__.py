"""Instance export and backup: snapshot, stream from Glance to Swift or a file, restore, retention."""
