"""Glance image data: createImage snapshots (never twice), ranged streamed downloads, streamed uploads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
from keystoneauth1.adapter import Adapter

from stackyard.cloud.clock import Clock, SystemClock
from stackyard.cloud.parse import as_int, utc_time
from stackyard.cloud.session import CloudSession
from stackyard.cloud.status import ImageStatus
from stackyard.cloud.streams import ResponseStream, call_once, checked, request_body
from stackyard.cloud.wait import DELETED, ProgressCallback, wait_for
from stackyard.errors import NotFound

__all__ = ["ImageData", "ImageGateway", "ImageInfo", "ImageStream"]

# Image properties Glance manages itself; everything else in an image body is a user property.
_CORE_FIELDS = frozenset(
    {
        "id",
        "name",
        "status",
        "size",
        "virtual_size",
        "disk_format",
        "container_format",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "owner",
        "visibility",
        "protected",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
        "min_disk",
        "min_ram",
        "locations",
        "direct_url",
        "stores",
        "os_hidden",
    }
)
_IMAGE_FAILURES = (ImageStatus.KILLED, ImageStatus.DELETED, ImageStatus.DEACTIVATED)


@dataclass(frozen=True)
class ImageInfo:
    id: str
    name: str
    status: ImageStatus
    size: int | None  # bytes of image data; None until uploaded
    disk_format: str | None
    container_format: str | None
    hash_algo: str | None  # Glance's os_hash_algo (sha512 by default)
    hash_value: str | None
    checksum: str | None  # legacy md5
    owner: str | None
    created_at: datetime | None
    visibility: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageData:
    """What Glance needs to create an image record before its data is uploaded."""

    name: str
    disk_format: str
    container_format: str = "bare"
    properties: Mapping[str, str] = field(default_factory=dict)


class ImageStream(ResponseStream):
    """An open download of image data. `resumed` is False when a ranged request was answered with the
    whole image (Glance or a proxy ignored the Range): the stream then starts at byte 0 and the
    caller must restart its output."""

    def __init__(self, response: requests.Response, offset: int, resumed: bool, total: int | None) -> None:
        super().__init__(response, "image", offset if resumed else 0, total)
        self.resumed = resumed


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _info(body: Mapping[str, Any]) -> ImageInfo:
    size = body.get("size")
    return ImageInfo(
        id=str(body["id"]),
        name=str(body.get("name") or ""),
        status=ImageStatus.from_openstack(body.get("status")),
        size=as_int(size) if size is not None else None,
        disk_format=_text(body.get("disk_format")),
        container_format=_text(body.get("container_format")),
        hash_algo=_text(body.get("os_hash_algo")),
        hash_value=_text(body.get("os_hash_value")),
        checksum=_text(body.get("checksum")),
        owner=_text(body.get("owner")),
        created_at=utc_time(body.get("created_at")),
        visibility=_text(body.get("visibility")),
        properties={
            str(key): str(value)
            for key, value in body.items()
            if key not in _CORE_FIELDS and isinstance(value, (str, int, float, bool))
        },
    )


class ImageGateway:
    """Image records and data through Glance v2 (`/v2/images`), and createImage through Nova."""

    def __init__(self, session: CloudSession, clock: Clock | None = None) -> None:
        self._session = session
        self._conn = session.conn
        self._clock = clock or SystemClock()

    @property
    def _glance(self) -> Adapter:
        return self._conn.image

    def get_image(self, image_id: str) -> ImageInfo:
        path = f"/images/{quote(image_id, safe='')}"
        body = self._session.call("image", "get image", lambda: checked(self._glance.get(path)).json())
        return _info(body)

    def find_images(self, properties: Mapping[str, str]) -> list[ImageInfo]:
        """Images whose properties equal all of `properties` (Glance filters on any property)."""
        params = {**properties, "limit": "100"}

        def fetch() -> list[ImageInfo]:
            body = checked(self._glance.get("/images", params=params)).json()
            return [_info(item) for item in body.get("images", [])]

        found = self._session.call("image", "find images", fetch)
        # Filter again here: a Glance that ignores unknown query keys would answer with every image.
        return [image for image in found if all(image.properties.get(k) == v for k, v in properties.items())]

    def snapshot_server(self, server_id: str, name: str, properties: Mapping[str, str]) -> ImageInfo:
        """createImage, made idempotent by `properties` (e.g. a job id): an image of this server with
        them already is adopted, before the call and after an ambiguous failure of it.

        NOTE: Nova's createImage takes no client token (compute API "Create Image" action); its
        `metadata` become image properties, so they serve as one.
        """

        def find() -> ImageInfo | None:
            for image in self.find_images(properties):
                if image.properties.get("instance_uuid") in (None, server_id):
                    return image
            return None

        existing = find()
        if existing is not None:
            return existing

        def create() -> ImageInfo:
            image = self._conn.compute.create_server_image(server_id, name, metadata=dict(properties))
            return self.get_image(str(image.id))

        return self._session.call(
            "compute", "create server image", create, idempotent=False, find_existing=find
        )

    def wait_for_image(
        self,
        image_id: str,
        *,
        timeout: float,
        interval: float = 2.0,
        on_progress: ProgressCallback[ImageStatus] | None = None,
    ) -> ImageInfo:
        """Until `active`; killed/deleted/deactivated raise ResourceFailed with what Glance says."""
        return wait_for(
            lambda: self.get_image(image_id),
            ImageStatus.ACTIVE,
            _IMAGE_FAILURES,
            status_of=lambda image: image.status,
            timeout=timeout,
            clock=self._clock,
            interval=interval,
            on_progress=on_progress,
            fault_of=lambda image: image.properties.get("os_glance_failed_import") or None,
            what=f"image {image_id}",
            service="image",
        )

    def open_download(self, image_id: str, offset: int = 0) -> ImageStream:
        """GET the image data from `offset` (a Range request when > 0)."""
        path = f"/images/{quote(image_id, safe='')}/file"
        headers = {"Range": f"bytes={offset}-"} if offset > 0 else {}

        def start() -> requests.Response:
            response = checked(self._glance.get(path, headers=headers, stream=True))
            if response.status_code == 204:
                response.close()
                raise NotFound(f"image {image_id} has no data", service="image", status_code=204)
            return response

        response = self._session.call("image", "download image", start)
        resumed = offset > 0 and response.status_code == 206
        length = response.headers.get("Content-Length")
        total = None
        if length is not None and length.isdigit():
            total = int(length) + (offset if resumed else 0)
        return ImageStream(response, offset, resumed, total)

    def create_image(self, data: ImageData) -> ImageInfo:
        body: dict[str, object] = {
            "name": data.name,
            "disk_format": data.disk_format,
            "container_format": data.container_format,
            **data.properties,
        }

        def find() -> ImageInfo | None:
            found = self.find_images(data.properties) if data.properties else []
            return found[0] if found else None

        created = self._session.call(
            "image",
            "create image",
            lambda: checked(self._glance.post("/images", json=body)).json(),
            idempotent=False,
            find_existing=lambda: None if (image := find()) is None else {"id": image.id},
        )
        return self.get_image(str(created["id"]))

    def upload(self, image_id: str, chunks: Iterable[bytes], size: int | None = None) -> None:
        """PUT the image data as one streamed request; not retried (a stream cannot be replayed), so a
        failure is raised for the caller to start the upload again."""
        path = f"/images/{quote(image_id, safe='')}/file"
        headers = {"Content-Type": "application/octet-stream"}
        call_once("image", lambda: self._glance.put(path, data=request_body(chunks, size), headers=headers))

    def delete_image(self, image_id: str) -> bool:
        """False when it was already gone."""
        path = f"/images/{quote(image_id, safe='')}"
        try:
            self._session.call("image", "delete image", lambda: checked(self._glance.delete(path)))
        except NotFound:
            return False
        return True

    def wait_for_image_deleted(self, image_id: str, *, timeout: float = 60.0) -> None:
        wait_for(
            lambda: self.get_image(image_id),
            DELETED,
            status_of=lambda image: image.status,
            timeout=timeout,
            clock=self._clock,
            interval=1.0,
            what=f"image {image_id}",
            service="image",
        )
