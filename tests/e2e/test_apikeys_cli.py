"""`stackyard apikeys` as an operator runs it on the server: a subprocess on a data dir of its own."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackyard.auth.apikeys import ApiKeyService
from stackyard.cloud.clock import SystemClock
from stackyard.db.engine import make_engine, session_factory
from stackyard.errors import Unauthenticated

KEY_RE = re.compile(r"sy_[0-9a-f]{8}_[A-Za-z0-9_\-]{43}")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STACKYARD_", "OS_"))}
    environ["STACKYARD_CONFIG"] = str(config)
    environ["STACKYARD_DATA_DIR"] = str(tmp_path / "data")
    return environ


def sy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stackyard")
    assert exe, "the stackyard console script is not installed"
    return subprocess.run([exe, "apikeys", *args], capture_output=True, text=True, env=env, timeout=120)


def service_on(env: dict[str, str]) -> ApiKeyService:
    """What the API does with a key: the same database, read by another process."""
    engine = make_engine(f"sqlite:///{Path(env['STACKYARD_DATA_DIR']) / 'stackyard.db'}")
    return ApiKeyService(session_factory(engine), SystemClock())


def test_create_list_revoke(env: dict[str, str]) -> None:
    created = sy(env, "create", "nightly-export", "--role", "member", "--project-id", "p-123", "-f", "json")
    assert created.returncode == 0, created.stderr
    shown = json.loads(created.stdout)
    assert KEY_RE.fullmatch(shown["key"])
    assert shown["role"] == "member" and shown["project_id"] == "p-123" and shown["status"] == "active"
    assert shown["created_by"].startswith("cli:")
    assert "not shown again" in created.stderr
    key = shown["key"]

    principal = service_on(env).authenticate_api_key(key)
    assert principal.project_id == "p-123" and principal.subject == f"apikey:{shown['id']}"

    listed = sy(env, "list", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert key not in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    rows = json.loads(listed.stdout)
    assert [(row["id"], row["status"]) for row in rows] == [(shown["id"], "active")]
    assert rows[0]["prefix"] == key[: len("sy_12345678_")]

    revoked = sy(env, "revoke", shown["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stderr
    with pytest.raises(Unauthenticated, match="revoked"):
        service_on(env).authenticate_api_key(key)
    assert json.loads(sy(env, "list", "-f", "json").stdout)[0]["status"] == "revoked"
    again = sy(env, "revoke", shown["id"])
    assert again.returncode == 0, again.stderr


def test_admin_key_with_an_expiry_and_the_table_output(env: dict[str, str]) -> None:
    created = sy(env, "create", "ci", "--role", "admin", "--expires-in-days", "2")
    assert created.returncode == 0, created.stderr
    assert KEY_RE.search(created.stdout)
    rows = json.loads(sy(env, "list", "-f", "json").stdout)
    expires = datetime.fromisoformat(rows[0]["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=2))) < timedelta(minutes=5)
    assert rows[0]["role"] == "admin" and rows[0]["project_id"] is None
    table = sy(env, "list")
    assert table.returncode == 0 and "ci" in table.stdout and not KEY_RE.search(table.stdout)


def test_usage_errors(env: dict[str, str]) -> None:
    member = sy(env, "create", "no-project", "--role", "member")
    assert member.returncode == 2
    assert "project_id" in member.stderr
    bad_role = sy(env, "create", "x", "--role", "owner")
    assert bad_role.returncode == 2
    unknown = sy(env, "revoke", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1 and "not found" in unknown.stderr
