"""Root Typer app: wires one sub-app per noun."""

from __future__ import annotations

import typer

from stackyard.cli import (
    apikeys,
    catalog,
    config,
    cost,
    db,
    devcloud,
    enrollment,
    exports,
    instances,
    inventory,
    operator,
    providers,
    quotas,
    serve,
    swift,
    worker,
)

app = typer.Typer(no_args_is_help=True, help="Operate OpenStack clouds for others.")
app.add_typer(apikeys.app, name="apikeys")
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(devcloud.app, name="devcloud")
app.add_typer(instances.app, name="instances")
app.add_typer(providers.app, name="providers")
app.add_typer(catalog.regions_app, name="regions")
app.add_typer(catalog.flavors_app, name="flavors")
app.add_typer(catalog.images_app, name="images")
app.add_typer(catalog.keypairs_app, name="keypairs")
app.add_typer(cost.cost_app, name="cost")
app.add_typer(cost.pricebook_app, name="pricebook")
app.add_typer(enrollment.students_app, name="students")
app.add_typer(enrollment.courses_app, name="courses")
app.add_typer(enrollment.enrollments_app, name="enrollments")
app.add_typer(enrollment.profiles_app, name="profiles")
app.add_typer(quotas.quotas_app, name="quotas")
app.add_typer(quotas.import_app, name="import")
app.add_typer(quotas.jobs_app, name="jobs")
app.add_typer(exports.exports_app, name="exports")
app.add_typer(swift.swift_app, name="swift")
app.add_typer(inventory.inventory_app, name="inventory")
app.add_typer(operator.operator_app, name="operator")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)


def main() -> None:
    app()
