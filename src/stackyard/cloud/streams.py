"""Request bodies that stream, and calls that cannot be retried because their body is a one-shot stream."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import requests
from openstack import exceptions as sdk_exc

from stackyard.cloud.errormap import is_cloud_exception, translate_error
from stackyard.errors import StackyardError


class SizedChunks:
    """Chunks whose total length is known up front.

    NOTE: requests sends any iterable body with `Transfer-Encoding: chunked` unless it can tell its
    length (`__len__`); a Content-Length header added by hand leaves both headers set, and uWSGI then
    fails to read the body (Glance answers 500 "unable to receive chunked part").
    """

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


# NOTE: uWSGI refuses a chunked-encoding part over its chunked-input-limit (1 MiB by default) with
# "unable to receive chunked part", and the OpenStack APIs run under uWSGI: keep parts well below it.
MAX_PART = 512 * 1024


def _bounded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if len(chunk) <= MAX_PART:
            if chunk:
                yield chunk
            continue
        view = memoryview(chunk)
        for start in range(0, len(view), MAX_PART):
            yield bytes(view[start : start + MAX_PART])


def request_body(chunks: Iterable[bytes], size: int | None) -> Iterable[bytes]:
    """A streamed body: with a Content-Length when `size` is known, chunked otherwise (in parts of at
    most MAX_PART bytes; an empty part would end a chunked body early, so none is sent)."""
    return SizedChunks(_bounded(chunks), size) if size is not None else _bounded(chunks)


def checked(response: requests.Response) -> requests.Response:
    """Raise the SDK's exception for an error status.

    NOTE: the SDK's proxies return raw responses whatever their status; raising the SDK's own
    exception lets the error map translate it like every other call.
    """
    sdk_exc.raise_from_response(response)
    return response


def call_once(service: str, fn: Callable[[], requests.Response]) -> requests.Response:
    """One call, its errors translated, no retry: for requests whose body cannot be sent again."""
    try:
        return checked(fn())
    except StackyardError:
        raise
    except Exception as exc:
        if is_cloud_exception(exc):
            raise translate_error(exc, service) from exc
        raise


class ResponseStream:
    """An open streamed download from byte `offset` of `total`: iterate `chunks`, then `close`."""

    def __init__(self, response: requests.Response, service: str, offset: int, total: int | None) -> None:
        self._response = response
        self._service = service
        self.offset = offset
        self.total = total

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        try:
            for chunk in self._response.iter_content(size):
                if chunk:
                    yield chunk
        except Exception as exc:
            # A connection that drops mid-body surfaces here, after the call that opened the stream.
            if is_cloud_exception(exc):
                raise translate_error(exc, self._service) from exc
            raise

    def close(self) -> None:
        self._response.close()
