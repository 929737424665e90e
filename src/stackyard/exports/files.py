"""Local ends of a transfer: a file read from an offset, a resumable `.part` file sink, a stream sink."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from stackyard.errors import IntegrityError, StorageError
from stackyard.exports.models import SegmentDone
from stackyard.exports.transfer import Pending


def _storage_error(exc: OSError, path: Path) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(f"{path.parent}: no space left on the device; the partial file was removed")
    return StorageError(f"{path}: {exc.strerror or exc}")


class FileStream:
    """A local file read from `offset` in chunks: a source for uploads and converted images."""

    def __init__(self, path: Path, offset: int) -> None:
        self.offset = offset
        self._file = path.open("rb")
        self._file.seek(offset)

    def chunks(self) -> Iterator[bytes]:
        while chunk := self._file.read(1024 * 1024):
            yield chunk

    def close(self) -> None:
        self._file.close()


class FileSink:
    """Segments appended to `<path>.part`, fsynced at each segment end; renamed into place by `commit`."""

    def __init__(self, path: Path, resume: Sequence[SegmentDone]) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self._resume = tuple(resume)
        self._done: list[SegmentDone] = []
        self._current: Pending | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = sum(segment.stored for segment in self._resume)
            if self._resume and self.part.exists() and self.part.stat().st_size >= kept:
                self._file: BinaryIO = self.part.open("r+b")
                self._file.truncate(kept)
                self._file.seek(kept)
            else:
                self._resume = ()
                self._file = self.part.open("wb")
        except OSError as exc:
            raise _storage_error(exc, path) from exc

    @property
    def resumable(self) -> tuple[SegmentDone, ...]:
        """The segments found intact on disk (empty when the partial file is gone)."""
        return self._resume

    def replay(self, segment: SegmentDone) -> Iterator[bytes]:
        offset = sum(s.stored for s in self._resume if s.index < segment.index)
        with self.part.open("rb") as reader:
            reader.seek(offset)
            left = segment.stored
            while left > 0:
                chunk = reader.read(min(left, 1024 * 1024))
                if not chunk:
                    raise IntegrityError(f"{self.part} ends before segment {segment.index} does")
                left -= len(chunk)
                yield chunk

    def start_segment(self, index: int, start: int) -> None:
        self._current = Pending(index, start, hashlib.md5(usedforsecurity=False))

    def write(self, data: bytes) -> None:
        assert self._current is not None
        try:
            self._file.write(data)
        except OSError as exc:
            raise _storage_error(exc, self.path) from exc
        self._current.md5.update(data)
        self._current.stored += len(data)

    def end_segment(self, end: int) -> None:
        current = self._current
        assert current is not None
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise _storage_error(exc, self.path) from exc
        self._done.append(
            SegmentDone(current.index, current.start, end, current.stored, current.md5.hexdigest())
        )
        self._current = None

    def completed(self) -> list[SegmentDone]:
        done, self._done = self._done, []
        return done

    def finish(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            raise _storage_error(exc, self.path) from exc

    def abort(self) -> None:
        self._file.close()

    def commit(self) -> None:
        self.part.replace(self.path)

    def discard(self) -> None:
        self._file.close()
        self.part.unlink(missing_ok=True)


class StreamSink:
    """Everything written to a binary stream (stdout); nothing to resume from."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._done: list[SegmentDone] = []
        self._current: Pending | None = None

    def replay(self, segment: SegmentDone) -> Iterator[bytes]:
        raise IntegrityError("a stream target cannot be resumed")

    def start_segment(self, index: int, start: int) -> None:
        self._current = Pending(index, start, hashlib.md5(usedforsecurity=False))

    def write(self, data: bytes) -> None:
        assert self._current is not None
        self._stream.write(data)
        self._current.md5.update(data)
        self._current.stored += len(data)

    def end_segment(self, end: int) -> None:
        current = self._current
        assert current is not None
        self._stream.flush()
        self._done.append(
            SegmentDone(current.index, current.start, end, current.stored, current.md5.hexdigest())
        )

    def completed(self) -> list[SegmentDone]:
        done, self._done = self._done, []
        return done

    def finish(self) -> None:
        self._stream.flush()

    def abort(self) -> None:
        return None
