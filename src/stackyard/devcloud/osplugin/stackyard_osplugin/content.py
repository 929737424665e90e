"""Deterministic snapshot content for the devcloud's fake hypervisor (standard library only)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

HEADER_BYTES = 512
BLOCK_BYTES = 64 * 1024
DEFAULT_SNAPSHOT_BYTES = 4 * 1024 * 1024


def snapshot_header(instance_uuid: str) -> bytes:
    """The first 512 bytes of every snapshot: an ASCII line naming the instance, NUL-padded."""
    line = f"stackyard devcloud snapshot {instance_uuid}\n".encode("ascii")
    if len(line) > HEADER_BYTES:
        raise ValueError(f"instance uuid too long for the snapshot header: {instance_uuid!r}")
    # NOTE: a readable header also keeps Glance's format inspector quiet: no format magic at
    # offset 0 and no 0x55AA MBR signature at offset 510, which random bytes hit 1 time in 65536
    # and which makes Glance reject a `raw` upload that fails the GPT/MBR safety check.
    return line.ljust(HEADER_BYTES, b"\0")


def snapshot_bytes(instance_uuid: str, size: int) -> Iterator[bytes]:
    """Yield the content of a snapshot of `instance_uuid`, `size` bytes in all, in chunks.

    The algorithm (version 1), for anyone who needs the expected bytes without this module:

    1. header = ASCII ``"stackyard devcloud snapshot <instance_uuid>\\n"`` right-padded with
       NUL bytes to exactly 512 bytes (`instance_uuid` as Nova reports it: lowercase, dashed);
    2. block k, for k = 0, 1, 2, ... = ``hashlib.shake_256(f"stackyard-devcloud-snapshot:
       {instance_uuid}:{k}".encode("ascii")).digest(65536)`` (k in decimal, no padding);
    3. content = (header + block 0 + block 1 + ...) cut to the first `size` bytes.

    So the content for a smaller size is a prefix of the content for a larger one, and a test can
    take the size Glance reports and compare ``sha256`` digests (see `snapshot_sha256`).
    Chunks are at most 64 KiB, so memory stays flat for any size.
    """
    if size < 0:
        raise ValueError(f"snapshot size must not be negative: {size}")
    remaining = size
    header = snapshot_header(instance_uuid)
    if remaining > 0:
        piece = header[:remaining]
        remaining -= len(piece)
        yield piece
    index = 0
    while remaining > 0:
        seed = f"stackyard-devcloud-snapshot:{instance_uuid}:{index}".encode("ascii")
        block = hashlib.shake_256(seed).digest(BLOCK_BYTES)
        piece = block[:remaining]
        remaining -= len(piece)
        index += 1
        yield piece


def snapshot_sha256(instance_uuid: str, size: int) -> str:
    """Hex SHA-256 of the snapshot content `snapshot_bytes` yields."""
    digest = hashlib.sha256()
    for chunk in snapshot_bytes(instance_uuid, size):
        digest.update(chunk)
    return digest.hexdigest()


class ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks.

    NOTE: glanceclient's upload (glanceclient/common/http.py `_chunk_body`) calls `.read()` on
    the data it is given; a bare iterator or generator fails there, so the stream needs this shape.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count
