"""Unit tests for the snapshot content algorithm (stdlib only; run with any Python 3.11+)."""

import hashlib
import json
import unittest

from stackyard_osplugin.content import (
    BLOCK_BYTES,
    HEADER_BYTES,
    ChunkReader,
    snapshot_bytes,
    snapshot_header,
    snapshot_sha256,
)

UUID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
KNOWN_SHA256_1MIB = "7359a138c49bdf44e0ad6dc1a5f4ffe66ce4f161fe42f2d2664e27140cf36cb2"


def expected_content(instance_uuid: str, size: int) -> bytes:
    """The docstring's algorithm, written independently, as the app's integration test would."""
    out = bytearray(f"stackyard devcloud snapshot {instance_uuid}\n".encode().ljust(512, b"\0"))
    index = 0
    while len(out) < size:
        seed = f"stackyard-devcloud-snapshot:{instance_uuid}:{index}".encode()
        out += hashlib.shake_256(seed).digest(65536)
        index += 1
    return bytes(out[:size])


class SnapshotBytesTest(unittest.TestCase):
    def test_matches_documented_algorithm_across_boundaries(self) -> None:
        for size in (
            0,
            1,
            HEADER_BYTES - 1,
            HEADER_BYTES,
            HEADER_BYTES + 1,
            HEADER_BYTES + BLOCK_BYTES,
            HEADER_BYTES + BLOCK_BYTES + 7,
            1_000_003,
        ):
            with self.subTest(size=size):
                self.assertEqual(b"".join(snapshot_bytes(UUID, size)), expected_content(UUID, size))

    def test_known_answer_pins_version_1(self) -> None:
        # Changing this digest breaks every consumer that recomputes snapshots: bump the version.
        self.assertEqual(
            snapshot_sha256(UUID, 1024 * 1024),
            hashlib.sha256(expected_content(UUID, 1024 * 1024)).hexdigest(),
        )
        self.assertEqual(snapshot_sha256(UUID, 1024 * 1024), KNOWN_SHA256_1MIB)

    def test_chunks_stay_small_and_sizes_add_up(self) -> None:
        chunks = list(snapshot_bytes(UUID, 3 * BLOCK_BYTES))
        self.assertLessEqual(max(len(c) for c in chunks), BLOCK_BYTES)
        self.assertEqual(sum(len(c) for c in chunks), 3 * BLOCK_BYTES)

    def test_smaller_size_is_a_prefix_and_uuids_differ(self) -> None:
        big = b"".join(snapshot_bytes(UUID, 200_000))
        self.assertTrue(big.startswith(b"".join(snapshot_bytes(UUID, 70_000))))
        other = b"".join(snapshot_bytes(UUID.replace("0b", "0c", 1), 200_000))
        self.assertNotEqual(big[HEADER_BYTES:], other[HEADER_BYTES:])

    def test_header_has_no_mbr_signature(self) -> None:
        header = snapshot_header(UUID)
        self.assertEqual(len(header), HEADER_BYTES)
        self.assertNotEqual(header[510:512], b"\x55\xaa")

    def test_negative_size_rejected(self) -> None:
        with self.assertRaises(ValueError):
            list(snapshot_bytes(UUID, -1))


class ChunkReaderTest(unittest.TestCase):
    def test_reads_in_any_sizes(self) -> None:
        reader = ChunkReader(iter([b"abc", b"", b"defgh", b"i"]))
        self.assertEqual(reader.read(2), b"ab")
        self.assertEqual(reader.read(4), b"c")
        self.assertEqual(reader.read(), b"defghi")
        self.assertEqual(reader.read(5), b"")

    def test_glanceclient_treats_it_as_a_file(self) -> None:
        # glanceclient json.dumps() the body first and streams it only on TypeError.
        with self.assertRaises(TypeError):
            json.dumps(ChunkReader(iter([b"x"])))


if __name__ == "__main__":
    unittest.main()
