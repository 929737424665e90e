"""Root Typer app: wires one sub-app per noun."""

from __future__ import annotations

import typer

from stackyard.cli import devcloud

app = typer.Typer(no_args_is_help=True, help="Operate OpenStack clouds for others.")
app.add_typer(devcloud.app, name="devcloud")


def main() -> None:
    app()
