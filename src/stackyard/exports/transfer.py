"""Stream bytes from a ranged source into segments of a sink (Swift, a file, stdout), resumably.

The source is read once, in order, and hashed as it passes; the bytes are cut into segments of
`segment_size` source bytes, each compressed as its own frame and stored as one unit. A stored
segment is recorded in the checkpoint, so a later attempt replays the stored segments (re-reading
them to rebuild the checksums) and asks the source for the rest with a Range request.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from stackyard.errors import IntegrityError, Timeout, Unavailable
from stackyard.exports.models import Checkpoint, Compression, SegmentDone, segment_name
from stackyard.exports.stream import Digest, Frame, RateMeter, Throttle, new_frame, new_unframe

_QUEUE_CHUNKS = 4  # chunks buffered per segment in flight: memory is parallel x this x chunk size
_SOURCE_RETRIES = 5  # reopen attempts in a row without progress before the job attempt gives up


class SourceStream(Protocol):
    offset: int  # the byte the stream starts at (0 when a Range was ignored)

    def chunks(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


OpenSource = Callable[[int], SourceStream]


class Sink(Protocol):
    """Where segments go. `start_segment`/`write`/`end_segment` come from the reading thread."""

    def replay(self, segment: SegmentDone) -> Iterator[bytes]:
        """The stored bytes of a segment a previous attempt completed."""
        ...

    def start_segment(self, index: int, start: int) -> None: ...

    def write(self, data: bytes) -> None: ...

    def end_segment(self, end: int) -> None: ...

    def completed(self) -> list[SegmentDone]:
        """Segments stored since the last call (a Swift sink stores them in the background)."""
        ...

    def finish(self) -> None:
        """Wait until every ended segment is stored; raise the first failure."""
        ...

    def abort(self) -> None:
        """Stop in-flight work; what is stored stays for a resume."""
        ...


class StoreSegment(Protocol):
    """Stores one segment's bytes as an object and returns its etag (md5)."""

    def __call__(self, name: str, chunks: Iterator[bytes]) -> str: ...


class ReadSegment(Protocol):
    def __call__(self, name: str) -> Iterator[bytes]: ...


_END = object()


class _Aborted(Exception):
    """Raised inside a segment's body so the HTTP request fails and no partial object is kept."""


@dataclass
class Pending:
    index: int
    start: int
    md5: hashlib._Hash
    stored: int = 0
    end: int | None = None


class SwiftSegmentSink:
    """Segments as objects `<prefix><index>`, up to `parallel` uploading at once, each streamed from a
    small bounded queue (memory stays flat whatever the segment size)."""

    def __init__(self, store: StoreSegment, read: ReadSegment, prefix: str, parallel: int) -> None:
        self._store = store
        self._read = read
        self._prefix = prefix
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="stackyard-segment")
        self._slots = threading.Semaphore(parallel)
        self._lock = threading.Lock()
        self._done: list[SegmentDone] = []
        self._futures: list[Future[None]] = []
        self._error: BaseException | None = None
        self._current: Pending | None = None
        self._queue: queue.Queue[object] | None = None
        self._aborting = threading.Event()

    def replay(self, segment: SegmentDone) -> Iterator[bytes]:
        return self._read(segment_name(self._prefix, segment.index))

    def _check(self) -> None:
        with self._lock:
            if self._error is not None:
                raise self._error

    def start_segment(self, index: int, start: int) -> None:
        while not self._slots.acquire(timeout=0.5):
            self._check()
        self._check()
        pending = Pending(index, start, hashlib.md5(usedforsecurity=False))
        chunks: queue.Queue[object] = queue.Queue(_QUEUE_CHUNKS)
        self._current, self._queue = pending, chunks
        self._futures.append(self._pool.submit(self._upload, pending, chunks))

    def _put(self, item: object) -> None:
        assert self._queue is not None
        while True:
            self._check()
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def write(self, data: bytes) -> None:
        assert self._current is not None
        self._current.md5.update(data)
        self._current.stored += len(data)
        self._put(data)

    def end_segment(self, end: int) -> None:
        assert self._current is not None
        self._current.end = end
        self._put(_END)
        self._current = self._queue = None

    def _upload(self, pending: Pending, chunks: queue.Queue[object]) -> None:
        def body() -> Iterator[bytes]:
            while True:
                try:
                    item = chunks.get(timeout=0.5)
                except queue.Empty:
                    if self._aborting.is_set():
                        raise _Aborted from None
                    continue
                if item is _END:
                    return
                assert isinstance(item, bytes)
                yield item

        try:
            etag = self._store(segment_name(self._prefix, pending.index), body())
            expected = pending.md5.hexdigest()
            if pending.end is None:
                raise _Aborted
            if etag != expected:
                raise IntegrityError(f"segment {pending.index}: Swift stored md5 {etag}, sent {expected}")
            with self._lock:
                self._done.append(
                    SegmentDone(pending.index, pending.start, pending.end, pending.stored, etag)
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
            with self._lock:
                if self._error is None and not isinstance(exc, _Aborted):
                    self._error = exc
            # A failed upload stops consuming: drain so the reader is never blocked on a full queue.
            while True:
                try:
                    chunks.get_nowait()
                except queue.Empty:
                    break
        finally:
            self._slots.release()

    def completed(self) -> list[SegmentDone]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def finish(self) -> None:
        for future in self._futures:
            future.result()
        self._pool.shutdown(wait=True)
        self._check()

    def abort(self) -> None:
        # An upload waiting for its next chunk sees the flag within half a second and fails its request,
        # so Swift keeps no partial segment.
        self._aborting.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class TransferResult:
    segments: tuple[SegmentDone, ...]
    source_bytes: int
    source_digest: str
    stored_bytes: int
    stored_sha256: str


Report = Callable[[int, float | None, Checkpoint | None], None]  # source bytes done, rate, new checkpoint


class Transfer:
    """One attempt at moving a source into a sink, resuming from `checkpoint`."""

    def __init__(
        self,
        *,
        open_source: OpenSource,
        source_size: int | None,
        digest: Digest,
        sink: Sink,
        compression: Compression,
        segment_size: int,
        checkpoint: Checkpoint,
        report: Report,
        throttle: Throttle | None = None,
        meter: RateMeter | None = None,
    ) -> None:
        self._open = open_source
        self._size = source_size
        self._digest = digest
        self._sink = sink
        self._compression = compression
        self._segment_size = segment_size
        self._checkpoint = checkpoint
        self._report = report
        self._throttle = throttle or Throttle(None)
        self._meter = meter or RateMeter()
        self._stored_hash = hashlib.sha256()
        self._stored_bytes = 0

    @property
    def checkpoint(self) -> Checkpoint:
        return self._checkpoint

    def run(self, resume: Sequence[SegmentDone]) -> TransferResult:
        try:
            offset = self._replay(resume)
            self._copy(offset)
            self._sink.finish()
        except BaseException:
            self._sink.abort()
            self._collect()  # segments stored before the failure are kept for the next attempt
            raise
        self._collect()
        segments = self._checkpoint.contiguous()
        self._report(segments[-1].end if segments else 0, self._meter.rate, self._checkpoint)
        return TransferResult(
            segments=segments,
            source_bytes=segments[-1].end if segments else 0,
            source_digest=self._digest.hexdigest(),
            stored_bytes=sum(s.stored for s in segments),
            stored_sha256=self._stored_hash.hexdigest(),
        )

    def _replay(self, resume: Sequence[SegmentDone]) -> int:
        """Re-read stored segments to rebuild both checksums; returns the source offset to go on from."""
        offset = 0
        for segment in resume:
            unframe = new_unframe(self._compression)
            md5 = hashlib.md5(usedforsecurity=False)
            source = 0
            for chunk in self._sink.replay(segment):
                md5.update(chunk)
                self._stored_hash.update(chunk)
                plain = unframe.decompress(chunk)
                self._digest.update(plain)
                source += len(plain)
            if md5.hexdigest() != segment.etag or source != segment.end - segment.start:
                raise IntegrityError(f"stored segment {segment.index} changed since it was written")
            self._stored_bytes += segment.stored
            offset = segment.end
            self._checkpoint = self._checkpoint.with_segment(segment)
        return offset

    def _collect(self) -> bool:
        done = self._sink.completed()
        for segment in done:
            self._checkpoint = self._checkpoint.with_segment(segment)
        return bool(done)

    def _chunks_from(self, offset: int) -> Iterator[bytes]:
        """The source from `offset`, reopened with a Range after a dropped connection; bytes a
        reopened stream repeats (its server ignored the Range) are skipped, not hashed twice."""
        position = offset
        failures = 0
        while True:
            stream = self._open(position)
            skip = position - stream.offset
            try:
                for chunk in stream.chunks():
                    if not chunk:
                        continue
                    if skip > 0:
                        dropped = min(skip, len(chunk))
                        skip -= dropped
                        chunk = chunk[dropped:]
                        if not chunk:
                            continue
                    failures = 0
                    position += len(chunk)
                    yield chunk
                return
            except (Unavailable, Timeout):
                failures += 1
                if failures >= _SOURCE_RETRIES:
                    raise
            finally:
                stream.close()

    def _copy(self, offset: int) -> None:
        position = offset
        index = len(self._checkpoint.contiguous())
        frame: Frame | None = None
        segment_end = 0
        for chunk in self._chunks_from(offset):
            view = memoryview(chunk)
            while view:
                if frame is None:
                    frame = new_frame(self._compression)
                    self._sink.start_segment(index, position)
                    segment_end = (index + 1) * self._segment_size
                piece = bytes(view[: segment_end - position])
                view = view[len(piece) :]
                self._digest.update(piece)
                self._throttle.take(len(piece))
                self._emit(frame.compress(piece))
                position += len(piece)
                if position == segment_end:
                    self._emit(frame.flush())
                    self._sink.end_segment(position)
                    frame, index = None, index + 1
            if self._meter.add(position) | self._collect():
                self._report(position, self._meter.rate, self._checkpoint)
        if frame is None and position == 0:
            frame = new_frame(self._compression)  # an empty source still makes one (empty) segment
            self._sink.start_segment(0, 0)
        if frame is not None:
            self._emit(frame.flush())
            self._sink.end_segment(position)
        if self._size is not None and position != self._size:
            raise IntegrityError(f"the source ended after {position} of its {self._size} bytes")

    def _emit(self, data: bytes) -> None:
        if data:
            self._stored_hash.update(data)
            self._stored_bytes += len(data)
            self._sink.write(data)


__all__ = [
    "OpenSource",
    "Sink",
    "SourceStream",
    "SwiftSegmentSink",
    "Transfer",
    "TransferResult",
]
