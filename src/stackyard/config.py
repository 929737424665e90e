"""stackyard settings: a YAML file plus STACKYARD_* environment overrides.

The file is STACKYARD_CONFIG or ~/.config/stackyard/config.yaml.

Built in entry points only, never at import time. Example file:

    providers:
      openstack: {auth_url: https://keystone.example.org/v3, username: ops, password: ..., project_name: ops}
    retry: {attempts: 5, initial: 2.0, multiplier: 2.0, cap: 30.0, deadline: 300}
    rate_limits: {compute: 10, network: 20}     # calls per second, per service
    request_timeout: 60
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from stackyard.errors import ConfigError, ValidationError

DEFAULT_CONFIG = Path("~/.config/stackyard/config.yaml")


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 5
    initial: float = 2.0
    multiplier: float = 2.0
    cap: float = 30.0
    deadline: float | None = None


@dataclass(frozen=True)
class Settings:
    config_file: Path | None = None
    openstack_provider: Mapping[str, object] | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    rate_limits: Mapping[str, float] = field(default_factory=dict)
    request_timeout: float = 60.0


def _number(value: object, name: str, *, minimum: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(name, f"expected a number, got {value!r}")
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise ValidationError(
            name, f"expected {'an integer' if integer else 'a number'}, got {value!r}"
        ) from None
    if number < minimum:
        raise ValidationError(name, f"must be at least {minimum:g}, got {number:g}")
    return number


def _section(document: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = document.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValidationError(key, f"expected a mapping, got {type(value).__name__}")
    return value


def parse_settings(document: Mapping[str, object], environ: Mapping[str, str], path: Path | None) -> Settings:
    """Validate a loaded YAML document and apply STACKYARD_* overrides; errors name the field."""
    known = {"providers", "retry", "rate_limits", "request_timeout"}
    for key in document:
        if key not in known:
            raise ValidationError(str(key), f"unknown setting; known: {', '.join(sorted(known))}")
    providers = _section(document, "providers")
    provider = providers.get("openstack")
    if provider is not None and not isinstance(provider, Mapping):
        raise ValidationError("providers.openstack", "expected a mapping")
    retry_doc = dict(_section(document, "retry"))
    for key, env in (("attempts", "STACKYARD_RETRY_ATTEMPTS"), ("deadline", "STACKYARD_RETRY_DEADLINE")):
        if env in environ:
            retry_doc[key] = environ[env]
    unknown_retry = set(retry_doc) - {"attempts", "initial", "multiplier", "cap", "deadline"}
    if unknown_retry:
        raise ValidationError(f"retry.{sorted(unknown_retry)[0]}", "unknown retry setting")
    defaults = RetrySettings()
    retry = RetrySettings(
        attempts=int(
            _number(retry_doc.get("attempts", defaults.attempts), "retry.attempts", minimum=1, integer=True)
        ),
        initial=_number(retry_doc.get("initial", defaults.initial), "retry.initial", minimum=0),
        multiplier=_number(retry_doc.get("multiplier", defaults.multiplier), "retry.multiplier", minimum=1),
        cap=_number(retry_doc.get("cap", defaults.cap), "retry.cap", minimum=0),
        deadline=(
            None
            if retry_doc.get("deadline") in (None, "", "none")
            else _number(retry_doc["deadline"], "retry.deadline", minimum=0)
        ),
    )
    rates = {
        str(service): _number(rate, f"rate_limits.{service}", minimum=0.001)
        for service, rate in _section(document, "rate_limits").items()
    }
    timeout_raw = environ.get("STACKYARD_REQUEST_TIMEOUT", document.get("request_timeout", 60.0))
    return Settings(
        config_file=path,
        openstack_provider=dict(provider) if provider is not None else None,
        retry=retry,
        rate_limits=rates,
        request_timeout=_number(timeout_raw, "request_timeout", minimum=1),
    )


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (an explicitly named one must exist) and the environment."""
    env = os.environ if environ is None else environ
    named = path or (Path(env["STACKYARD_CONFIG"]) if env.get("STACKYARD_CONFIG") else None)
    candidate = (named or DEFAULT_CONFIG).expanduser()
    if not candidate.exists():
        if named is not None:
            raise ConfigError(f"config file {candidate} does not exist")
        return parse_settings({}, env, None)
    try:
        document = yaml.safe_load(candidate.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{candidate} is not valid YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise ConfigError(f"{candidate} must hold a mapping at the top level")
    return parse_settings(document, env, candidate)
