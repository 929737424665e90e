"""Root Typer app: wires one sub-app per noun."""

from __future__ import annotations

import typer

from stackyard.cli import catalog, config, db, devcloud, instances

app = typer.Typer(no_args_is_help=True, help="Operate OpenStack clouds for others.")
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(devcloud.app, name="devcloud")
app.add_typer(instances.app, name="instances")
app.add_typer(catalog.regions_app, name="regions")
app.add_typer(catalog.flavors_app, name="flavors")
app.add_typer(catalog.images_app, name="images")
app.add_typer(catalog.keypairs_app, name="keypairs")


def main() -> None:
    app()
