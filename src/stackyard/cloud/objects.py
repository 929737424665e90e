"""Swift objects: streamed ranged transfers, Static Large Objects, paged listings, SLO-aware deletes."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from keystoneauth1.adapter import Adapter

from stackyard.cloud.parse import as_int, utc_time
from stackyard.cloud.session import CloudSession
from stackyard.cloud.streams import ResponseStream, call_once, checked, request_body
from stackyard.errors import NotFound

__all__ = ["ObjectInfo", "ObjectStoreGateway", "SegmentRef"]

SERVICE = "object_store"
_LIST_LIMIT = 1000


@dataclass(frozen=True)
class ObjectInfo:
    container: str
    name: str
    size: int
    etag: str | None  # md5 of the data; for an SLO manifest, Swift's etag of its segments' etags
    last_modified: datetime | None
    content_type: str | None
    is_large: bool = False  # a Static Large Object manifest
    is_pseudo_folder: bool = False  # a `subdir` entry of a delimited listing
    metadata: tuple[tuple[str, str], ...] = ()  # X-Object-Meta-*, names lowercased without the prefix


@dataclass(frozen=True)
class SegmentRef:
    """One segment of a Static Large Object: where it is and what it must be."""

    path: str  # "container/name", as an SLO manifest names it
    etag: str
    size: int


def object_path(container: str, name: str = "") -> str:
    """The URL path of a container or object below the account endpoint (both parts quoted)."""
    path = "/" + quote(container, safe="")
    return f"{path}/{quote(name, safe='/')}" if name else path


def _metadata(headers: Any) -> tuple[tuple[str, str], ...]:
    prefix = "x-object-meta-"
    return tuple(
        sorted(
            (key.lower()[len(prefix) :], str(value))
            for key, value in headers.items()
            if key.lower().startswith(prefix)
        )
    )


class ObjectStoreGateway:
    """Containers and objects of the session's project account."""

    def __init__(self, session: CloudSession) -> None:
        self._session = session
        self._conn = session.conn

    @property
    def _swift(self) -> Adapter:
        return self._conn.object_store

    def _list(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        body = checked(self._swift.get(path, params=params)).json()
        return body if isinstance(body, list) else []

    # -- containers ------------------------------------------------------------------------------

    def container_exists(self, container: str) -> bool:
        try:
            self._session.call(
                SERVICE, "head container", lambda: checked(self._swift.head(object_path(container)))
            )
        except NotFound:
            return False
        return True

    def create_container(self, container: str) -> None:
        """Idempotent: PUT on an existing container changes nothing."""
        self._session.call(
            SERVICE, "create container", lambda: checked(self._swift.put(object_path(container)))
        )

    def containers(self) -> list[str]:
        names: list[str] = []
        marker = ""
        while True:
            params = {"format": "json", "limit": str(_LIST_LIMIT), "marker": marker}
            page = self._session.call(SERVICE, "list containers", functools.partial(self._list, "/", params))
            names.extend(str(item["name"]) for item in page)
            if len(page) < _LIST_LIMIT:
                return names
            marker = names[-1]

    # -- objects ---------------------------------------------------------------------------------

    def head_object(self, container: str, name: str) -> ObjectInfo | None:
        """None when the object does not exist; NotFound naming the container when that is missing."""
        try:
            response = self._session.call(
                SERVICE, "head object", lambda: checked(self._swift.head(object_path(container, name)))
            )
        except NotFound:
            if not self.container_exists(container):
                raise NotFound(f"container {container!r} does not exist", service=SERVICE) from None
            return None
        headers = response.headers
        return ObjectInfo(
            container=container,
            name=name,
            size=as_int(headers.get("Content-Length")),
            etag=(headers.get("Etag") or "").strip('"') or None,
            last_modified=None,
            content_type=headers.get("Content-Type"),
            is_large=headers.get("X-Static-Large-Object", "").lower() == "true",
            metadata=_metadata(headers),
        )

    def objects(
        self, container: str, *, prefix: str | None = None, delimiter: str | None = None
    ) -> Iterator[ObjectInfo]:
        """Every object (all pages), optionally under `prefix`; with `delimiter`, pseudo-folders too."""
        marker = ""
        while True:
            params = {"format": "json", "limit": str(_LIST_LIMIT), "marker": marker}
            if prefix:
                params["prefix"] = prefix
            if delimiter:
                params["delimiter"] = delimiter
            page = self._session.call(
                SERVICE, "list objects", functools.partial(self._list, object_path(container), params)
            )
            for item in page:
                if "subdir" in item:
                    yield ObjectInfo(
                        container, str(item["subdir"]), 0, None, None, None, is_pseudo_folder=True
                    )
                    continue
                yield ObjectInfo(
                    container=container,
                    name=str(item["name"]),
                    size=as_int(item.get("bytes")),
                    etag=str(item.get("hash") or "") or None,
                    last_modified=utc_time(item.get("last_modified")),
                    content_type=item.get("content_type"),
                    # NOTE: listings mark SLO manifests with "slo_etag" (Swift >= 2.20).
                    is_large="slo_etag" in item,
                )
            if len(page) < _LIST_LIMIT:
                return
            last = page[-1]
            marker = str(last.get("name") or last.get("subdir"))

    def put_object(
        self,
        container: str,
        name: str,
        chunks: Iterable[bytes],
        *,
        size: int | None = None,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Stream `chunks` into one object (chunked transfer when `size` is unknown); returns its etag.
        Not retried: the stream cannot be replayed, so a failure is the caller's to restart."""
        headers = {"Content-Type": content_type}
        for key, value in (metadata or {}).items():
            headers[f"X-Object-Meta-{key}"] = value
        path = object_path(container, name)
        response = call_once(
            SERVICE, lambda: self._swift.put(path, data=request_body(chunks, size), headers=headers)
        )
        return (response.headers.get("Etag") or "").strip('"')

    def put_small_object(self, container: str, name: str, data: bytes, content_type: str) -> str:
        """A small object from bytes in memory, under the retry policy (the body can be resent)."""
        headers = {"Content-Type": content_type}
        response = self._session.call(
            SERVICE,
            "put object",
            lambda: checked(self._swift.put(object_path(container, name), data=data, headers=headers)),
        )
        return (response.headers.get("Etag") or "").strip('"')

    def put_manifest(
        self,
        container: str,
        name: str,
        segments: Sequence[SegmentRef],
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Create a Static Large Object; Swift checks every segment's etag and size against the list."""
        body = json.dumps([{"path": s.path, "etag": s.etag, "size_bytes": s.size} for s in segments])
        headers = {"Content-Type": content_type}
        for key, value in (metadata or {}).items():
            headers[f"X-Object-Meta-{key}"] = value
        path = object_path(container, name)
        response = self._session.call(
            SERVICE,
            "put manifest",
            lambda: checked(
                self._swift.put(path, params={"multipart-manifest": "put"}, data=body, headers=headers)
            ),
        )
        return (response.headers.get("Etag") or "").strip('"')

    def open_object(self, container: str, name: str, offset: int = 0) -> ResponseStream:
        headers = {"Range": f"bytes={offset}-"} if offset > 0 else {}
        response = self._session.call(
            SERVICE,
            "download object",
            lambda: checked(self._swift.get(object_path(container, name), headers=headers, stream=True)),
        )
        if offset > 0 and response.status_code != 206:
            response.close()
            raise NotFound(f"object {container}/{name} has no byte {offset}", service=SERVICE)
        length = response.headers.get("Content-Length")
        total = int(length) + offset if length is not None and length.isdigit() else None
        return ResponseStream(response, SERVICE, offset, total)

    def manifest_segments(self, container: str, name: str) -> list[SegmentRef]:
        """The segments of a Static Large Object (empty for a plain object)."""
        response = self._session.call(
            SERVICE,
            "get manifest",
            lambda: checked(
                self._swift.get(
                    object_path(container, name), params={"multipart-manifest": "get", "format": "raw"}
                )
            ),
        )
        if response.headers.get("X-Static-Large-Object", "").lower() != "true":
            return []
        return [
            SegmentRef(
                path=str(item["path"]).lstrip("/"), etag=str(item["etag"]), size=as_int(item["size_bytes"])
            )
            for item in response.json()
        ]

    def delete_object(self, container: str, name: str) -> bool:
        """Delete an object, and the segments of a Static Large Object with it; False when absent.

        NOTE: a plain DELETE of an SLO manifest leaves its segments behind; `multipart-manifest=delete`
        removes both (Swift's SLO middleware).
        """
        info = self.head_object(container, name)
        if info is None:
            return False
        params = {"multipart-manifest": "delete"} if info.is_large else None
        try:
            self._session.call(
                SERVICE,
                "delete object",
                lambda: checked(self._swift.delete(object_path(container, name), params=params)),
            )
        except NotFound:
            return False
        return True

    def delete_plain(self, container: str, name: str) -> bool:
        """DELETE one object as it is (a segment, a probe); False when absent."""
        try:
            self._session.call(
                SERVICE, "delete object", lambda: checked(self._swift.delete(object_path(container, name)))
            )
        except NotFound:
            return False
        return True
