"""The few Kubernetes API calls the operator makes itself: read a Secret, write a custom resource's status.

kopf watches and dispatches; this client reuses the connection kopf logged in with (kubeconfig or the
pod's service account), so both talk to the same server with the same identity.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from stackyard.errors import ConfigError, Forbidden, NotFound, Unavailable
from stackyard.operator.spec import GROUP, PLURAL, VERSION


@dataclass(frozen=True)
class ApiServer:
    """Where the API server is and who we are; `token` is a secret and stays out of repr."""

    url: str
    token: str | None = None
    ca_pem: str | None = None  # PEM text of the CA that signed the server's certificate
    ca_path: str | None = None
    insecure: bool = False
    client_cert: tuple[str, str] | None = None  # (certificate path, key path)

    def __repr__(self) -> str:
        return f"ApiServer(url={self.url!r}, insecure={self.insecure})"


@dataclass(frozen=True)
class Secret:
    namespace: str
    name: str
    resource_version: str
    data: Mapping[str, bytes]

    def value(self, key: str) -> str:
        if key not in self.data:
            keys = ", ".join(sorted(self.data)) or "none"
            raise NotFound(f"Secret {self.namespace}/{self.name} has no key {key!r}; its keys: {keys}")
        try:
            return self.data[key].decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"Secret {self.namespace}/{self.name} key {key!r} is not UTF-8 text") from None

    def __repr__(self) -> str:  # values are credentials
        return f"Secret({self.namespace}/{self.name}, keys={sorted(self.data)})"


def _decoded_pem(data: str | bytes) -> str:
    """kubeconfig's certificate-authority-data is base64 of the PEM; accept the PEM itself too."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        return raw.decode()
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ConfigError("the Kubernetes CA data is neither PEM nor base64 of a PEM") from None


def api_server_of(info: Any) -> ApiServer:
    """An ApiServer from kopf's ConnectionInfo (duck-typed, so tests need not build one)."""
    ca = getattr(info, "ca_data", None)
    cert = getattr(info, "certificate_path", None)
    key = getattr(info, "private_key_path", None)
    return ApiServer(
        url=str(info.server).rstrip("/"),
        token=getattr(info, "token", None),
        ca_pem=_decoded_pem(ca) if ca else None,
        ca_path=str(info.ca_path) if getattr(info, "ca_path", None) else None,
        insecure=bool(getattr(info, "insecure", False)),
        client_cert=(str(cert), str(key)) if cert and key else None,
    )


class KubeClient:
    def __init__(self, server: ApiServer, *, timeout: float = 15.0) -> None:
        verify: ssl.SSLContext | bool = True
        if server.insecure:
            verify = False
        elif server.ca_pem or server.ca_path:
            verify = ssl.create_default_context(cafile=server.ca_path, cadata=server.ca_pem)
        if server.client_cert and isinstance(verify, ssl.SSLContext):
            verify.load_cert_chain(*server.client_cert)
        headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
        self._client = httpx.Client(base_url=server.url, headers=headers, verify=verify, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"kubernetes: {what}: {type(exc).__name__}", service="kubernetes") from None
        if response.status_code == 404:
            raise NotFound(f"{what}: not found")
        if response.status_code in (401, 403):
            raise Forbidden(f"{what}: the operator's service account may not ({response.status_code})")
        if response.status_code >= 400:
            message = (
                response.json().get("message", "")
                if response.headers.get("content-type", "").startswith("application/json")
                else ""
            )
            raise Unavailable(
                f"kubernetes: {what}: HTTP {response.status_code} {message}".rstrip(), service="kubernetes"
            )
        body: dict[str, Any] = response.json()
        return body

    def secret(self, namespace: str, name: str) -> Secret:
        body = self._send(
            "GET", f"/api/v1/namespaces/{namespace}/secrets/{name}", f"Secret {namespace}/{name}"
        )
        data = {key: base64.b64decode(value) for key, value in (body.get("data") or {}).items()}
        return Secret(namespace, name, str(body["metadata"].get("resourceVersion", "")), data)

    def patch_status(self, namespace: str, name: str, status: Mapping[str, object]) -> None:
        """Merge `status` into the OpenstackConfig's status subresource (None values remove keys)."""
        self._send(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status",
            f"status of {PLURAL}/{namespace}/{name}",
            json={"status": dict(status)},
            headers={"Content-Type": "application/merge-patch+json"},
        )
