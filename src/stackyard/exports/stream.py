"""Byte-stream pieces of a transfer: checksums, per-segment compression frames, a bandwidth cap, progress."""

from __future__ import annotations

import hashlib
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import zstandard

from stackyard.errors import IntegrityError
from stackyard.exports.models import Compression


class Digest:
    """The checksum Glance recorded for an image (os_hash_algo/os_hash_value, else md5 `checksum`),
    computed over the bytes as they pass."""

    def __init__(self, algo: str | None, expected: str | None, md5: str | None) -> None:
        self.algo: str
        self.expected: str | None
        if algo and expected and algo in hashlib.algorithms_available:
            self.algo, self.expected = algo, expected.lower()
        elif md5:
            self.algo, self.expected = "md5", md5.lower()
        else:
            self.algo, self.expected = "sha256", None  # nothing to check against: still recorded
        self._hash = hashlib.new(self.algo)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def verify(self, what: str) -> str:
        """The digest; IntegrityError when it differs from the expected one."""
        actual = self.hexdigest()
        if self.expected is not None and actual != self.expected:
            raise IntegrityError(
                f"{what}: {self.algo} is {actual[:16]}..., Glance recorded {self.expected[:16]}...;"
                " the partial output was removed"
            )
        return actual


class Frame(Protocol):
    """One compression frame: what `compress` returns, then `flush` ends the frame."""

    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def new_frame(compression: Compression) -> Frame:
    """A compressor for one segment. Each segment is an independent frame (zstd frame, gzip member),
    so a resumed export can start a new frame at any segment boundary; concatenated frames are a
    valid stream for `zstd -d` and `gzip -d` alike."""
    if compression is Compression.ZSTD:
        compressor = zstandard.ZstdCompressor(level=3).compressobj()

        class _Zstd:
            def compress(self, data: bytes) -> bytes:
                return compressor.compress(data)

            def flush(self) -> bytes:
                return compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)

        return _Zstd()
    if compression is Compression.GZIP:
        return zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member with header and CRC
    return _Identity()


class Unframe(Protocol):
    """Decompresses one frame fed in pieces."""

    def decompress(self, data: bytes) -> bytes: ...


class _Passthrough:
    def decompress(self, data: bytes) -> bytes:
        return data


def new_unframe(compression: Compression) -> Unframe:
    """A decompressor for one stored segment (one frame), for re-reading what a resumed export kept."""
    if compression is Compression.ZSTD:
        return zstandard.ZstdDecompressor().decompressobj()
    if compression is Compression.GZIP:
        return zlib.decompressobj(31)
    return _Passthrough()


class Throttle:
    """Caps a byte rate by sleeping; None lets everything through."""

    def __init__(self, bytes_per_second: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = bytes_per_second
        self._clock = clock
        self._start = clock()
        self._sent = 0

    def take(self, size: int) -> None:
        if not self._rate:
            return
        self._sent += size
        ahead = self._sent / self._rate - (self._clock() - self._start)
        if ahead > 0:
            time.sleep(ahead)


@dataclass(frozen=True)
class Progress:
    phase: str
    done: int
    total: int | None
    rate: float | None  # bytes per second lately


ProgressSink = Callable[[Progress], None]


class RateMeter:
    """Bytes per second over a sliding window, and a throttle on how often progress is reported."""

    def __init__(
        self, window: float = 5.0, every: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._every = every
        self._clock = clock
        self._samples: list[tuple[float, int]] = []
        self._last_report = float("-inf")
        self._lock = threading.Lock()

    def add(self, done: int) -> bool:
        """Record the running total; True when a report is due."""
        now = self._clock()
        with self._lock:
            self._samples.append((now, done))
            while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
                self._samples.pop(0)
            if now - self._last_report >= self._every:
                self._last_report = now
                return True
        return False

    @property
    def rate(self) -> float | None:
        with self._lock:
            if len(self._samples) < 2:
                return None
            (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None
