"""Create, dump and restore the devcloud's MariaDB databases (private or given by --db-url)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from stackyard.devcloud.context import CloudContext
from stackyard.errors import DevcloudError


@dataclass(frozen=True)
class DbServer:
    """Connection parts of a `mysql+pymysql://user:password@host:port` URL."""

    user: str
    password: str
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> DbServer:
        parts = urlsplit(url)
        if not parts.scheme.startswith("mysql"):
            raise DevcloudError(f"the devcloud needs a MySQL/MariaDB URL, got scheme {parts.scheme!r}")
        return cls(
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
        )

    def client_args(self) -> list[str]:
        return [f"--host={self.host}", f"--port={self.port}", f"--user={self.user}", "--protocol=TCP"]

    def client_env(self) -> dict[str, str]:
        # NOTE: MYSQL_PWD keeps the password out of argv (visible in `ps`).
        return {**os.environ, "MYSQL_PWD": self.password}


def _run(server: DbServer, argv: list[str], what: str, stdin: Path | str | None = None) -> str:
    if isinstance(stdin, Path):
        with stdin.open("rb") as handle:
            result = subprocess.run(
                argv, stdin=handle, capture_output=True, env=server.client_env(), check=False
            )
    else:
        result = subprocess.run(
            argv,
            input=(stdin or "").encode(),
            capture_output=True,
            env=server.client_env(),
            check=False,
        )
    if result.returncode != 0:
        raise DevcloudError(f"{what} failed: {result.stderr.decode(errors='replace').strip()[-2000:]}")
    return result.stdout.decode(errors="replace")


def full_name(ctx: CloudContext, database: str) -> str:
    return f"{ctx.db_prefix}{database}"


def create_databases(ctx: CloudContext, server: DbServer, names: Iterable[str]) -> None:
    sql = "".join(
        f"CREATE DATABASE IF NOT EXISTS `{full_name(ctx, n)}` CHARACTER SET utf8mb3;" for n in names
    )
    if sql:
        _run(server, ["mariadb", *server.client_args()], "creating databases", sql)


def drop_databases(ctx: CloudContext, server: DbServer, names: Iterable[str]) -> None:
    sql = "".join(f"DROP DATABASE IF EXISTS `{full_name(ctx, n)}`;" for n in names)
    if sql:
        _run(server, ["mariadb", *server.client_args()], "dropping databases", sql)


def existing_databases(ctx: CloudContext, server: DbServer, names: Iterable[str]) -> set[str]:
    """Which of `names` hold tables already."""
    wanted = {full_name(ctx, n): n for n in names}
    if not wanted:
        return set()
    listed = ",".join(f"'{n}'" for n in wanted)
    out = _run(
        server,
        ["mariadb", *server.client_args(), "--batch", "--skip-column-names"],
        "listing databases",
        # Names are our own constants plus a fixed prefix, never user input.
        f"SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_schema IN ({listed});",  # noqa: S608
    )
    return {wanted[line.strip()] for line in out.splitlines() if line.strip() in wanted}


def dump(ctx: CloudContext, server: DbServer, names: Iterable[str], target: Path) -> None:
    argv = [
        "mariadb-dump",
        *server.client_args(),
        "--single-transaction",
        "--skip-lock-tables",
        "--routines",
        "--databases",
        *[full_name(ctx, n) for n in names],
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        result = subprocess.run(
            argv, stdout=handle, stderr=subprocess.PIPE, env=server.client_env(), check=False
        )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise DevcloudError(f"mariadb-dump failed: {result.stderr.decode(errors='replace').strip()}")
    tmp.replace(target)


def restore(server: DbServer, source: Path) -> None:
    _run(server, ["mariadb", *server.client_args()], "restoring the database snapshot", source)


def query(server: DbServer, sql: str) -> str:
    """Run one statement; its result as tab-separated text without column names."""
    return _run(server, ["mariadb", *server.client_args(), "--batch", "--skip-column-names"], "query", sql)
