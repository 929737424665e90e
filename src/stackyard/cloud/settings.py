"""Credentials a caller states itself (explicitly or in the settings file): validated, secrets hidden."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from urllib.parse import urlsplit

from stackyard.cloud.errormap import redact
from stackyard.errors import ValidationError

PROVIDER_PREFIX = "providers.openstack"
INTERFACES = ("public", "internal", "admin")
_REDACTED = "***"


class AuthMethod(StrEnum):
    """How to authenticate; the values are keystoneauth plugin names (clouds.yaml `auth_type`)."""

    PASSWORD = "password"  # noqa: S105 (a plugin name, not a secret)
    TOKEN = "token"  # noqa: S105 (a plugin name, not a secret)
    APPLICATION_CREDENTIAL = "v3applicationcredential"


class CredentialSource(StrEnum):
    """Which of the four sources supplied a cloud's credentials."""

    EXPLICIT = "explicit"
    CLOUDS_YAML = "clouds.yaml"
    ENVIRONMENT = "environment"
    STACKYARD_CONFIG = "stackyard config"


# --------------------------------------------------------------------------------------------------
# Settings given explicitly or in stackyard's YAML
# --------------------------------------------------------------------------------------------------

_SECRET_FIELDS = frozenset({"password", "token", "application_credential_secret"})
_STRING_FIELDS = (
    "auth_url",
    "username",
    "password",
    "token",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
    "user_domain_name",
    "project_domain_name",
    "project_name",
    "project_id",
    "region_name",
    "interface",
    "cacert",
)
# Names people paste from clouds.yaml or openrc files, pointed at ours in the error.
_KEY_HINTS = {
    "auth_type": "auth_method",
    "project": "project_name",
    "tenant_name": "project_name",
    "region": "region_name",
    "verify": "insecure",
    "user": "username",
    "domain_name": "user_domain_name and project_domain_name",
}


@dataclass(frozen=True, repr=False)
class CloudSettings:
    """Credentials and connection options for one cloud; secrets never appear in its repr.

    `source` says where the settings came from (a file path, "explicit settings") for messages and logs.
    """

    auth_url: str
    auth_method: AuthMethod = AuthMethod.PASSWORD
    username: str | None = None
    password: str | None = None
    token: str | None = None
    application_credential_id: str | None = None
    application_credential_name: str | None = None
    application_credential_secret: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    project_name: str | None = None
    project_id: str | None = None
    region_name: str | None = None
    interface: str = "public"
    cacert: str | None = None
    insecure: bool = False
    source: str = "explicit settings"

    def __post_init__(self) -> None:
        if isinstance(self.auth_method, str) and not isinstance(self.auth_method, AuthMethod):
            with contextlib.suppress(ValueError):  # an unknown name is reported by _first_problem
                object.__setattr__(self, "auth_method", AuthMethod(self.auth_method))
        problem = self._first_problem()
        if problem is not None:
            raise ValidationError(*problem)

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _SECRET_FIELDS and value is not None:
                shown.append(f"{item.name}={_REDACTED!r}")
            else:
                shown.append(f"{item.name}={value!r}")
        return f"CloudSettings({', '.join(shown)})"

    @classmethod
    def from_mapping(cls, data: object, *, source: str, prefix: str = PROVIDER_PREFIX) -> CloudSettings:
        """Validate a `providers.openstack` mapping (parsed YAML) found in `source`.

        Raises ValidationError naming the offending field, e.g. `providers.openstack.auth_url`. Without
        `auth_method`, it is inferred: application-credential fields, else a token, else password.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(prefix, f"expected a mapping, got {type(data).__name__} (in {source})")
        known = {item.name for item in fields(cls)} - {"source"}
        values: dict[str, object] = {}
        for key, value in data.items():
            name = str(key)
            where = f"{prefix}.{name}"
            if name not in known:
                hint = f"; did you mean {_KEY_HINTS[name]}?" if name in _KEY_HINTS else ""
                raise ValidationError(where, f"unknown setting (in {source}){hint}")
            if value is None:
                continue  # `key:` with nothing after it in YAML: treat as not set
            if name == "insecure":
                if not isinstance(value, bool):
                    raise ValidationError(where, f"expected true or false, got {value!r} (in {source})")
            elif name == "auth_method":
                try:
                    value = AuthMethod(str(value))
                except ValueError:
                    choices = ", ".join(method.value for method in AuthMethod)
                    raise ValidationError(
                        where, f"expected one of {choices}, got {value!r} (in {source})"
                    ) from None
            elif not isinstance(value, str):
                raise ValidationError(
                    where, f"expected a string, got {type(value).__name__} (quote it in YAML) (in {source})"
                )
            values[name] = value
        if "auth_url" not in values:
            raise ValidationError(
                f"{prefix}.auth_url", f"missing: the Keystone URL is required (in {source})"
            )
        if "auth_method" not in values:
            values["auth_method"] = _infer_method(values)
        try:
            return cls(**values, source=source)  # type: ignore[arg-type]  # types checked above
        except ValidationError as exc:
            raise ValidationError(f"{prefix}.{exc.field}", f"{exc.message} (in {source})") from None

    def _first_problem(self) -> tuple[str, str] | None:
        """(field, message) for the first thing wrong, or None; messages never include values of secrets."""
        for name in _STRING_FIELDS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                return name, "must be a non-empty string"
        parts = urlsplit(self.auth_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "auth_url", redact(f"expected an http(s) URL of Keystone, got {self.auth_url!r}")
        if not isinstance(self.auth_method, AuthMethod):
            return "auth_method", f"expected an AuthMethod, got {self.auth_method!r}"
        if self.interface not in INTERFACES:
            return "interface", f"expected one of {', '.join(INTERFACES)}, got {self.interface!r}"
        if not isinstance(self.insecure, bool):
            return "insecure", f"expected true or false, got {self.insecure!r}"
        if self.insecure and self.cacert:
            return "cacert", "insecure: true turns certificate verification off, so cacert would be ignored"
        return self._credential_problem()

    def _credential_problem(self) -> tuple[str, str] | None:
        method = self.auth_method
        has_project = self.project_name is not None or self.project_id is not None
        stray = {
            AuthMethod.PASSWORD: ("token", *_APP_CRED_FIELDS),
            AuthMethod.TOKEN: ("username", "password", *_APP_CRED_FIELDS),
            AuthMethod.APPLICATION_CREDENTIAL: ("password", "token"),
        }[method]
        for name in stray:
            if getattr(self, name) is not None:
                return name, f"does not go with auth_method {method.value}"
        if method is AuthMethod.PASSWORD:
            for name in ("username", "password"):
                if getattr(self, name) is None:
                    return name, "missing: password authentication needs username and password"
        elif method is AuthMethod.TOKEN:
            if self.token is None:
                return "token", "missing: token authentication needs a token"
        else:
            if self.application_credential_secret is None:
                return "application_credential_secret", "missing: an application credential needs its secret"
            if self.application_credential_id is None:
                if self.application_credential_name is None:
                    return "application_credential_id", "missing: give the id, or the name and username"
                if self.username is None:
                    return "username", "missing: an application credential given by name needs its user"
            if has_project:
                # NOTE: an application credential is bound to the project it was created in; Keystone
                # answers 401 "Application credentials cannot request a scope" when a token request
                # carries one (identity v3 API, POST /v3/auth/tokens, method application_credential).
                name = "project_name" if self.project_name is not None else "project_id"
                return name, "an application credential already belongs to a project; remove it"
            return None
        if not has_project:
            return "project_name", f"missing: {method.value} authentication needs project_name or project_id"
        return None

    def cloud_entry(self) -> dict[str, object]:
        """These settings as one clouds.yaml cloud entry (what openstacksdk's loader consumes)."""
        scope = ("project_name", "project_id", "project_domain_name")
        keys: tuple[str, ...]
        if self.auth_method is AuthMethod.PASSWORD:
            keys = ("username", "password", "user_domain_name", *scope)
        elif self.auth_method is AuthMethod.TOKEN:
            keys = ("token", *scope)
        elif self.application_credential_id is not None:
            keys = _APP_CRED_FIELDS
        else:
            keys = (*_APP_CRED_FIELDS, "username", "user_domain_name")
        auth: dict[str, object] = {"auth_url": self.auth_url}
        auth.update({key: getattr(self, key) for key in keys if getattr(self, key) is not None})
        entry: dict[str, object] = {
            "auth_type": self.auth_method.value,
            "auth": auth,
            "interface": self.interface,
            "identity_api_version": "3",
        }
        if self.region_name is not None:
            entry["region_name"] = self.region_name
        if self.cacert is not None:
            entry["cacert"] = self.cacert
        if self.insecure:
            entry["verify"] = False
        return entry


_APP_CRED_FIELDS = (
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
)


def _infer_method(values: Mapping[str, object]) -> AuthMethod:
    if any(key in values for key in _APP_CRED_FIELDS):
        return AuthMethod.APPLICATION_CREDENTIAL
    if "token" in values:
        return AuthMethod.TOKEN
    return AuthMethod.PASSWORD
