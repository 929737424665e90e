"""The devcloud's persisted state and generated secrets (files kept with mode 0600)."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stackyard.devcloud.context import Layout, Secrets


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def secrets_file(layout: Layout) -> Path:
    return layout.root / "secrets.json"


def load_or_create_secrets(layout: Layout) -> Secrets:
    """Secrets survive `reset` because the database snapshot was made with them."""
    path = secrets_file(layout)
    if path.exists():
        return Secrets(**json.loads(path.read_text()))
    created = Secrets(
        admin_password=pysecrets.token_urlsafe(18),
        demo_password=pysecrets.token_urlsafe(18),
        service_password=pysecrets.token_urlsafe(18),
        db_password=pysecrets.token_urlsafe(18),
        rabbit_password=pysecrets.token_urlsafe(18),
        swift_hash_suffix=pysecrets.token_hex(16),
    )
    _write_private(path, json.dumps(asdict(created), indent=2))
    return created


def load_secrets(layout: Layout) -> Secrets | None:
    path = secrets_file(layout)
    return Secrets(**json.loads(path.read_text())) if path.exists() else None


@dataclass
class DevcloudState:
    """What the last `up` set up: components, processes, backing servers, synced databases."""

    components: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    db_base_url: str = ""
    db_prefix: str = ""
    transport_url: str = ""
    synced_databases: list[str] = field(default_factory=list)
    is_private_db: bool = True
    # Bootstrap phase -> {"fingerprint": sha256 of its inputs, "components": [...]}.
    bootstrapped: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, layout: Layout) -> DevcloudState:
        if not layout.state_file.exists():
            return cls()
        return cls(**json.loads(layout.state_file.read_text()))

    def save(self, layout: Layout) -> None:
        _write_private(layout.state_file, json.dumps(asdict(self), indent=2))
