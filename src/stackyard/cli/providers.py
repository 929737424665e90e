"""`stackyard providers list`: the providers the API would serve, with reachability and auth status."""

from __future__ import annotations

import sys

import typer

from stackyard.cli.common import DebugOption, FormatOption, boundary, context
from stackyard.cli.factory import retry_policy
from stackyard.cli.render import OutputFormat, Row, emit_rows
from stackyard.cloud.clock import SystemClock
from stackyard.config import load_settings
from stackyard.errors import StackyardError
from stackyard.providers.openstack import CloudRuntime
from stackyard.providers.registry import build_providers, devcloud_cloud_settings, needs_devcloud

app = typer.Typer(no_args_is_help=True, help="Providers: configured clouds and plugin providers.")


@app.command("list")
def providers_list(fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    """Every configured provider (clouds.yaml clouds, plugins; else the devcloud) and its status."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        settings = load_settings()
        runtime = CloudRuntime(policy=retry_policy(settings), clock=SystemClock())
        devcloud = devcloud_cloud_settings() if needs_devcloud(settings) else None
        providers = build_providers(settings, runtime, devcloud=devcloud)
        rows: list[Row] = []
        try:
            for name in sorted(providers):
                provider = providers[name]
                status = provider.status()
                regions: list[str] = []
                if status.is_reachable and status.is_auth_ok:
                    try:
                        regions = [r.id for r in provider.regions()]
                    except StackyardError as exc:
                        status = type(status)(status.is_reachable, status.is_auth_ok, str(exc))
                rows.append(
                    {
                        "name": name,
                        "type": provider.type,
                        "cloud": provider.cloud or "",
                        "regions": regions,
                        "reachable": status.is_reachable,
                        "auth_ok": status.is_auth_ok,
                        "message": status.message or "",
                    }
                )
        finally:
            for provider in providers.values():
                provider.close()
        columns = ["name", "type", "cloud", "regions", "reachable", "auth_ok", "message"]
        emit_rows(rows, columns, ctx.fmt, sys.stdout, ctx.out)
