"""The transfer engine with an in-memory source and sinks: segmentation, frames, resume, range quirks."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator

import pytest
import zstandard

from stackyard.errors import IntegrityError, Unavailable
from stackyard.exports.files import StreamSink
from stackyard.exports.models import Checkpoint, Compression, SegmentDone
from stackyard.exports.stream import Digest, new_frame
from stackyard.exports.transfer import SwiftSegmentSink, Transfer

DATA = hashlib.shake_256(b"transfer").digest(10_000)


class Source:
    """Serves DATA from an offset; can drop the connection after `cut` bytes, or ignore Range."""

    def __init__(
        self, data: bytes = DATA, *, cuts: list[int] | None = None, honours_range: bool = True
    ) -> None:
        self.data = data
        self.cuts = list(cuts or [])
        self.honours_range = honours_range
        self.opened: list[int] = []

    def __call__(self, offset: int) -> Stream:
        self.opened.append(offset)
        start = offset if self.honours_range else 0
        cut = self.cuts.pop(0) if self.cuts else None
        return Stream(self.data, start, cut)


class Stream:
    def __init__(self, data: bytes, offset: int, cut: int | None) -> None:
        self.data, self.offset, self.cut = data, offset, cut

    def chunks(self) -> Iterator[bytes]:
        position = self.offset
        sent = 0
        while position < len(self.data):
            piece = self.data[position : position + 700]
            if self.cut is not None and sent + len(piece) > self.cut:
                yield piece[: self.cut - sent]
                raise Unavailable("connection dropped", service="image")
            sent += len(piece)
            position += len(piece)
            yield piece

    def close(self) -> None:
        return None


class Objects:
    """Swift's side of the segment sink: objects by name, md5 etags."""

    def __init__(self, *, corrupt: str | None = None) -> None:
        self.stored: dict[str, bytes] = {}
        self.corrupt = corrupt

    def store(self, name: str, chunks: Iterator[bytes]) -> str:
        data = b"".join(chunks)
        self.stored[name] = data
        if name == self.corrupt:
            return "0" * 32
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def read(self, name: str) -> Iterator[bytes]:
        yield self.stored[name]


def run(
    source: Source,
    objects: Objects,
    *,
    compression: Compression = Compression.NONE,
    segment: int = 3000,
    checkpoint: Checkpoint | None = None,
    expected: str | None = None,
) -> tuple[Transfer, list[Checkpoint]]:
    saved: list[Checkpoint] = []
    sink = SwiftSegmentSink(objects.store, objects.read, "seg/", parallel=2)
    transfer = Transfer(
        open_source=source,
        source_size=len(source.data),
        digest=Digest("sha512", expected or hashlib.sha512(source.data).hexdigest(), None),
        sink=sink,
        compression=compression,
        segment_size=segment,
        checkpoint=checkpoint or Checkpoint(),
        report=lambda _done, _rate, cp: saved.append(cp) if cp is not None else None,
    )
    return transfer, saved


def joined(objects: Objects, compression: Compression) -> bytes:
    stored = b"".join(objects.stored[name] for name in sorted(objects.stored))
    if compression is Compression.ZSTD:
        return zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(stored)
    if compression is Compression.GZIP:
        return gzip.decompress(stored)
    return stored


@pytest.mark.parametrize("compression", list(Compression))
def test_segments_are_cut_by_source_bytes_and_each_is_one_frame(compression: Compression) -> None:
    objects = Objects()
    transfer, _ = run(Source(), objects, compression=compression)
    result = transfer.run(())
    assert [s.index for s in result.segments] == [0, 1, 2, 3]
    assert [(s.start, s.end) for s in result.segments] == [
        (0, 3000),
        (3000, 6000),
        (6000, 9000),
        (9000, 10_000),
    ]
    assert joined(objects, compression) == DATA
    stored = b"".join(objects.stored[name] for name in sorted(objects.stored))
    assert result.stored_sha256 == hashlib.sha256(stored).hexdigest()
    assert result.stored_bytes == len(stored) and result.source_bytes == len(DATA)
    assert result.source_digest == hashlib.sha512(DATA).hexdigest()


def test_a_dropped_connection_is_reopened_at_the_byte_reached() -> None:
    source = Source(cuts=[2500, 4000])
    transfer, _ = run(source, Objects())
    transfer.run(())
    assert source.opened == [0, 2500, 6500]


def test_a_server_that_ignores_range_is_skipped_forward_not_hashed_twice() -> None:
    source = Source(cuts=[2500], honours_range=False)
    objects = Objects()
    transfer, _ = run(source, objects)
    result = transfer.run(())
    assert source.opened == [0, 2500]
    assert joined(objects, Compression.NONE) == DATA
    assert result.source_digest == hashlib.sha512(DATA).hexdigest()


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.ZSTD])
def test_a_later_attempt_replays_stored_segments_and_fetches_only_the_rest(compression: Compression) -> None:
    objects = Objects()
    first, _ = run(Source(cuts=[5000, 0, 0, 0, 0, 0]), objects, compression=compression)
    with pytest.raises(Unavailable):
        first.run(())
    kept = first.checkpoint.contiguous()
    assert [s.index for s in kept] == [0]  # 5000 bytes in: only the first 3000-byte segment is whole

    source = Source()
    second, _ = run(source, objects, compression=compression, checkpoint=first.checkpoint)
    result = second.run(kept)
    assert source.opened == [3000]
    assert joined(objects, compression) == DATA
    assert result.source_digest == hashlib.sha512(DATA).hexdigest()
    assert [s.index for s in result.segments] == [0, 1, 2, 3]


def test_a_stored_segment_that_changed_is_not_trusted() -> None:
    objects = Objects()
    first, _ = run(Source(), objects)
    first.run(())
    objects.stored["seg/00000000"] = b"x" * 3000
    second, _ = run(Source(), objects, checkpoint=first.checkpoint)
    with pytest.raises(IntegrityError, match="segment 0 changed"):
        second.run(first.checkpoint.contiguous()[:1])


def test_an_etag_that_is_not_the_md5_sent_fails_the_transfer() -> None:
    transfer, _ = run(Source(), Objects(corrupt="seg/00000001"))
    with pytest.raises(IntegrityError, match="segment 1"):
        transfer.run(())


def test_a_checksum_mismatch_is_found_by_verify_not_hidden() -> None:
    objects = Objects()
    transfer, _ = run(Source(), objects, expected="ab" * 64)
    transfer.run(())
    digest = Digest("sha512", "ab" * 64, None)
    digest.update(DATA)
    with pytest.raises(IntegrityError, match="Glance recorded"):
        digest.verify("image x")


def test_a_short_source_is_an_integrity_error() -> None:
    source = Source()
    transfer = Transfer(
        open_source=source,
        source_size=len(DATA) + 1,
        digest=Digest(None, None, None),
        sink=SwiftSegmentSink(Objects().store, Objects().read, "s/", 1),
        compression=Compression.NONE,
        segment_size=4000,
        checkpoint=Checkpoint(),
        report=lambda *_: None,
    )
    with pytest.raises(IntegrityError, match="ended after 10000 of its 10001 bytes"):
        transfer.run(())


def test_an_empty_source_still_makes_one_segment() -> None:
    objects = Objects()
    transfer, _ = run(Source(b""), objects, segment=1000)
    result = transfer.run(())
    assert [(s.index, s.start, s.end) for s in result.segments] == [(0, 0, 0)]


def test_a_stream_sink_writes_everything_in_order() -> None:
    import io

    out = io.BytesIO()
    transfer = Transfer(
        open_source=Source(),
        source_size=len(DATA),
        digest=Digest(None, None, None),
        sink=StreamSink(out),
        compression=Compression.GZIP,
        segment_size=4096,
        checkpoint=Checkpoint(),
        report=lambda *_: None,
    )
    result = transfer.run(())
    assert gzip.decompress(out.getvalue()) == DATA and len(result.segments) == 3


def test_frames_concatenate_into_one_valid_stream() -> None:
    pieces = []
    for part in (DATA[:4000], DATA[4000:]):
        frame = new_frame(Compression.ZSTD)
        pieces.append(frame.compress(part) + frame.flush())
    assert (
        zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(b"".join(pieces))
        == DATA
    )


def test_checkpoints_round_trip_through_json_payloads() -> None:
    checkpoint = Checkpoint(
        snapshot_image_id="img", snapshot_created=True, location="swift://c/n", upload_id="u"
    )
    checkpoint = checkpoint.with_segment(SegmentDone(1, 10, 20, 9, "b")).with_segment(
        SegmentDone(0, 0, 10, 8, "a")
    )
    assert Checkpoint.from_payload(checkpoint.to_payload()) == checkpoint
    assert [s.index for s in checkpoint.contiguous()] == [0, 1]
    assert checkpoint.with_segment(SegmentDone(3, 30, 40, 9, "d")).contiguous() == checkpoint.contiguous()
    assert Checkpoint.from_payload(None) == Checkpoint()
