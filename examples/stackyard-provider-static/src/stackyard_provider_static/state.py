"""The JSON state file of the static provider: its records, and locked, atomic updates of it."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

from stackyard.errors import CloudError, Unavailable

SERVICE = "static"  # the `service` named by the CloudErrors the static provider raises
STATE_VERSION = 1


class FlavorRecord(TypedDict):
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int


class InstanceRecord(TypedDict):
    id: str
    seq: int  # creation order: lists are newest first, and the address is derived from it
    name: str
    region: str
    project_id: str
    status: str
    flavor: FlavorRecord  # a copy, as Nova embeds one: changing the options does not resize instances
    image_id: str | None
    key_name: str | None
    metadata: dict[str, str]
    tags: list[str]
    created_at: str
    updated_at: str


class State(TypedDict):
    version: int
    next_seq: int
    instances: dict[str, InstanceRecord]


class StateFile:
    """The JSON state file shared by every process of every worker.

    Writers take an exclusive flock on a sibling `.lock` file around read-modify-write and replace the
    state file atomically, so readers need no lock: they see the old or the new file, never half of one.
    The lock is on a separate file because the replace swaps the state file's inode.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(f"{path.name}.lock")

    def read(self) -> State:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return State(version=STATE_VERSION, next_seq=0, instances={})
        except OSError as exc:
            raise Unavailable(f"static: cannot read state file {self.path}: {exc}", service=SERVICE) from exc
        return self._parse(text)

    @contextmanager
    def update(self) -> Iterator[State]:
        """The current state, to change in place; written back only if the block raises nothing."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise Unavailable(
                f"static: cannot open lock file {self.lock_path}: {exc}", service=SERVICE
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self.read()
            yield state
            self._write(state)
        finally:
            os.close(fd)  # releases the lock

    def _parse(self, text: str) -> State:
        try:
            state = json.loads(text)
        except ValueError as exc:
            raise self.corrupt(str(exc)) from exc
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise self.corrupt(f"expected a version {STATE_VERSION} state object")
        if not isinstance(state.get("next_seq"), int) or not isinstance(state.get("instances"), dict):
            raise self.corrupt("expected next_seq and instances")
        for key, record in state["instances"].items():
            if not isinstance(record, dict) or not InstanceRecord.__required_keys__ <= record.keys():
                raise self.corrupt(f"instance {key!r} is not an instance record")
        return State(version=STATE_VERSION, next_seq=state["next_seq"], instances=state["instances"])

    def corrupt(self, reason: str) -> CloudError:
        """The error for a state file that is not what this provider writes."""
        return CloudError(f"static: state file {self.path} is corrupt: {reason}", service=SERVICE)

    def _write(self, state: State) -> None:
        tmp: Path | None = None
        try:
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=self.path.parent, prefix=f".{self.path.name}.", delete=False
            ) as out:
                tmp = Path(out.name)
                json.dump(state, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self.path)
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise Unavailable(f"static: cannot write state file {self.path}: {exc}", service=SERVICE) from exc
