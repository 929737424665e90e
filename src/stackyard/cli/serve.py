"""`stackyard serve`: run the REST API with uvicorn (migrating SQLite and starting the devcloud if needed)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from stackyard.api.logs import configure_logging
from stackyard.api.metrics import MULTIPROC_ENV
from stackyard.api.wiring import build_state
from stackyard.cli.common import CommandContext, DebugOption, boundary, context
from stackyard.cli.cost import read_document
from stackyard.cli.factory import open_database
from stackyard.cli.render import OutputFormat
from stackyard.config import load_settings
from stackyard.db.engine import transaction
from stackyard.devcloud.components import ALL
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root
from stackyard.pricing.service import PricingService
from stackyard.providers.registry import devcloud_cloud_settings, needs_devcloud

APP_FACTORY = "stackyard.web.app:create_app_from_environment"
WORKER_START_TIMEOUT = 60  # seconds a worker may take to start answering its supervisor


def seed_price_book(sessions: sessionmaker[Session], path: Path, ctx: CommandContext) -> None:
    """Import the configured price book when the database has none yet (never over an existing one)."""
    with transaction(sessions) as db:
        pricing = PricingService(db)
        if pricing.versions():
            return
        book = pricing.import_price_book(
            read_document(path), comment=f"seeded from {path.name}", actor="serve"
        )
    ctx.err.print(f"imported {path} as price book version {book.version}")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    start_devcloud: Annotated[
        bool,
        typer.Option(help="With no provider configured, start the local devcloud if it is not running."),
    ] = True,
    debug: DebugOption = False,
) -> None:
    """Serve the REST API (docs /docs, OpenAPI /openapi.json, metrics /metrics) and the dashboard (/ui)."""
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        settings = load_settings()
        # SQLite is migrated here; a server database must already be at the current revision.
        sessions = open_database(settings)
        if settings.price_book_file is not None:
            seed_price_book(sessions, settings.price_book_file, ctx)
        uses_devcloud = needs_devcloud(settings)
        if uses_devcloud and start_devcloud:
            cloud = Devcloud(Layout(default_root()), report=lambda msg: ctx.err.print(f"devcloud: {msg}"))
            cloud.up(UpOptions(ALL))
        # Build the state once here, so a bad provider or plugin is a one-line error, not a worker crash.
        devcloud = devcloud_cloud_settings() if uses_devcloud else None
        build_state(settings, devcloud=devcloud).close()
        metrics_dir = None
        if workers > 1 and not os.environ.get(MULTIPROC_ENV):
            # Each worker writes its metric samples here; /metrics sums them.
            metrics_dir = tempfile.mkdtemp(prefix="stackyard-metrics-")
            os.environ[MULTIPROC_ENV] = metrics_dir
        configure_logging(log_level)
        ctx.err.print(
            f"stackyard API on http://{host}:{port} (docs /docs, dashboard /ui), {workers} worker(s)"
        )
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            log_level=log_level,
            # A worker importing stackyard (openstacksdk, SQLAlchemy, FastAPI) on a busy 2-core machine
            # can take longer than uvicorn's 5 s default; it would be killed and restarted forever.
            timeout_worker_healthcheck=WORKER_START_TIMEOUT,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
