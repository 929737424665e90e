"""The one exception tree of stackyard; boundaries map it to HTTP codes, exit codes or retries.

StackyardError
├── ConfigError                 bad or missing configuration
├── ValidationError             bad input, names the offending field
├── AuthError                   an API caller could not be authenticated or may not do this
│   ├── Unauthenticated         no, bad, expired or revoked credentials
│   ├── PermissionDenied        authenticated, but the role does not allow the action
│   └── RateLimited             too many requests from one client (carries retry_after)
├── IntegrityError              transferred data does not match its checksum
├── StorageError                a local file could not be written (disk full, no permission)
├── DevcloudError               the local cloud could not be started or managed
│   ├── PortInUseError          a port the devcloud needs is taken
│   └── ServiceStartError       a service died or never became healthy (carries its log tail)
└── CloudError                  a cloud call failed (request id + service message)
    ├── NotFound
    ├── Conflict
    ├── QuotaExceeded
    ├── Forbidden
    ├── Unauthorized
    ├── BadRequest
    ├── Unavailable             5xx, connection failure, unreachable endpoint
    ├── Timeout                 a call or a wait ran past its deadline
    └── ResourceFailed          a waited-on resource reached a failure state (carries its fault)
"""

from __future__ import annotations


class StackyardError(Exception):
    """Base of every error stackyard raises on purpose."""


class ConfigError(StackyardError):
    """Configuration is missing, unreadable or contradictory."""


class ValidationError(StackyardError):
    """Input failed validation; `field` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AuthError(StackyardError):
    """An API caller's credentials or rights are not enough."""


class Unauthenticated(AuthError):
    """No credentials, or credentials that are invalid, expired or revoked."""


class PermissionDenied(AuthError):
    """The caller is known but their role does not allow this."""


class RateLimited(AuthError):
    """The caller sent more requests than its rate allows; retry after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class IntegrityError(StackyardError):
    """Data read or written does not match the checksum it must have; partial output is removed."""


class StorageError(StackyardError):
    """A local file or directory could not be written (disk full, no permission, not a directory)."""


class DevcloudError(StackyardError):
    """The local development cloud could not be started, stopped or queried."""


class PortInUseError(DevcloudError):
    """A TCP port the devcloud wants is already bound by another process."""

    def __init__(self, service: str, port: int) -> None:
        super().__init__(
            f"port {port} needed by {service} is already in use by another process; "
            "stop it or pick other ports in the devcloud config"
        )
        self.service = service
        self.port = port


class ServiceStartError(DevcloudError):
    """A devcloud service exited or never became healthy while starting."""

    def __init__(self, service: str, reason: str, log_tail: str) -> None:
        message = f"{service} failed to start: {reason}"
        if log_tail:
            message += f"\n--- last lines of the {service} log ---\n{log_tail}"
        super().__init__(message)
        self.service = service
        self.reason = reason
        self.log_tail = log_tail


class CloudError(StackyardError):
    """A call to an OpenStack service failed."""

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.status_code = status_code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class NotFound(CloudError):
    """The resource does not exist (or is not visible to the caller)."""


class Conflict(CloudError):
    """The resource is in a state that forbids the operation."""


class QuotaExceeded(CloudError):
    """The project's quota does not allow the operation."""


class Forbidden(CloudError):
    """The caller's role does not allow the operation."""


class Unauthorized(CloudError):
    """Authentication failed or the token expired and could not be renewed."""


class BadRequest(CloudError):
    """The cloud rejected the request as malformed or invalid."""


class Unavailable(CloudError):
    """The service answered 5xx, throttled us past the budget, or could not be reached."""


class Timeout(CloudError):
    """A call or a wait did not complete before its deadline."""


class ResourceFailed(CloudError):
    """A resource reached a failure state (server ERROR, image killed...); `fault` is the cloud's reason."""

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        status: str | None = None,
        fault: str | None = None,
    ) -> None:
        super().__init__(message, service=service)
        self.status = status
        self.fault = fault
