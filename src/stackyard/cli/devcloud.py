"""`stackyard devcloud ...`: run a real OpenStack on loopback for development and tests."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stackyard.cli.output import fail
from stackyard.devcloud.access import clouds_yaml, env_exports, notification_url
from stackyard.devcloud.components import parse_components
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root
from stackyard.devcloud.process import log_tail
from stackyard.errors import StackyardError
from stackyard.inventory.notifications import NOTIFICATIONS_URL_ENV

app = typer.Typer(no_args_is_help=True, help="A real OpenStack on 127.0.0.1, from PyPI, in one command.")

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Devcloud directory [env STACKYARD_DEVCLOUD_DIR, default ~/.local/share/stackyard/devcloud].",
    ),
]


def _devcloud(directory: Path | None, console: Console) -> Devcloud:
    root = (directory or default_root()).resolve()
    return Devcloud(Layout(root), report=lambda msg: console.print(f"[dim]devcloud:[/dim] {msg}"))


@app.command()
def up(
    directory: DirOption = None,
    services: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subset, e.g. identity,compute-api,network,volume-api (default: all)."
        ),
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            help="Use this MariaDB/MySQL server (mysql+pymysql://user:pw@host:port) instead of a private one."
        ),
    ] = None,
    broker_url: Annotated[
        str | None,
        typer.Option(help="Use this RabbitMQ (rabbit://user:pw@host:port/vhost) instead of a private one."),
    ] = None,
    no_snapshot: Annotated[
        bool, typer.Option("--no-snapshot", help="Bootstrap from scratch, ignoring a saved snapshot.")
    ] = False,
) -> None:
    """Install if needed, configure, start and wait until healthy. Idempotent."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        components = parse_components(services)
        cloud = _devcloud(directory, console)
        result = cloud.up(UpOptions(components, db_url, broker_url, use_snapshot=not no_snapshot))
    except StackyardError as exc:
        fail(console, exc)
    if result.started:
        how = "from snapshot" if result.restored_snapshot else "fresh"
        console.print(
            f"devcloud up ({how}) in {result.seconds:.1f} s: {len(result.started)} processes started"
        )
    if result.already_running:
        console.print("already running: " + ", ".join(result.already_running))
    console.print("credentials: `stackyard devcloud env` or `stackyard devcloud clouds-yaml`")


@app.command()
def down(directory: DirOption = None) -> None:
    """Stop every process the devcloud started (SIGTERM, then SIGKILL after a timeout)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        stopped = _devcloud(directory, console).down()
    except StackyardError as exc:
        fail(console, exc)
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status(directory: DirOption = None) -> None:
    """Each process: pid, port, health and resident memory."""
    console = Console()
    rows = _devcloud(directory, Console(stderr=True, soft_wrap=True)).status()
    if not rows:
        console.print("devcloud not set up yet: run `stackyard devcloud up`")
        raise typer.Exit(1)
    table = Table("service", "pid", "port", "health", "rss")
    for row in rows:
        health = "healthy" if row.is_healthy else ("unhealthy" if row.is_running else "stopped")
        rss = f"{row.rss_bytes / 2**20:.0f} MiB" if row.rss_bytes else "-"
        table.add_row(row.name, str(row.pid or "-"), str(row.port or "-"), health, rss)
    console.print(table)
    if not all(row.is_healthy for row in rows):
        raise typer.Exit(1)


@app.command()
def reset(
    directory: DirOption = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Also delete the snapshot and the generated secrets.")
    ] = False,
) -> None:
    """Stop everything and wipe data (the OpenStack virtualenv is kept)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        _devcloud(directory, console).reset(keep_snapshot=not all_)
    except StackyardError as exc:
        fail(console, exc)
    console.print("devcloud data wiped" + (" (snapshot too)" if all_ else "; the snapshot is kept"))


@app.command("env")
def env_(
    directory: DirOption = None,
    user: Annotated[str, typer.Option(help="admin or demo")] = "admin",
) -> None:
    """Print `export OS_*=...` lines for the admin (or demo) user."""
    try:
        sys.stdout.write(env_exports(_devcloud(directory, Console(stderr=True, soft_wrap=True)), user))
    except StackyardError as exc:
        fail(Console(stderr=True, soft_wrap=True), exc)


@app.command("clouds-yaml")
def clouds_yaml_(directory: DirOption = None) -> None:
    """Print a clouds.yaml with clouds `devcloud` (admin) and `devcloud-demo` (member)."""
    try:
        sys.stdout.write(clouds_yaml(_devcloud(directory, Console(stderr=True, soft_wrap=True))))
    except StackyardError as exc:
        fail(Console(stderr=True, soft_wrap=True), exc)


@app.command("notifications-url")
def notifications_url_(directory: DirOption = None) -> None:
    """Print `export STACKYARD_NOTIFICATIONS_URL=...`: the broker Neutron and Nova notify (a secret)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        url = notification_url(_devcloud(directory, console))
    except StackyardError as exc:
        fail(console, exc)
    sys.stdout.write(f"export {NOTIFICATIONS_URL_ENV}={shlex.quote(url)}\n")


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help="Process name as shown by `status`, e.g. nova-compute.")],
    directory: DirOption = None,
    lines: Annotated[int, typer.Option("--lines", "-n")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
) -> None:
    """Show the end of a service's log."""
    cloud = _devcloud(directory, Console(stderr=True, soft_wrap=True))
    path = cloud.layout.log_file(service)
    if not path.exists():
        fail(
            Console(stderr=True, soft_wrap=True),
            StackyardError(f"no log for {service!r} in {cloud.layout.logs}"),
        )
    sys.stdout.write(log_tail(path, lines) + "\n")
    if follow:
        with path.open() as handle:
            handle.seek(0, 2)
            while True:
                chunk = handle.read()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.5)
