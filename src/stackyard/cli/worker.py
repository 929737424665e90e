"""`stackyard worker`: run jobs from the broker (jobs.broker_url / STACKYARD_BROKER_URL) on Celery."""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer

from stackyard.api.logs import configure_logging
from stackyard.api.wiring import build_state
from stackyard.cli.common import DebugOption, boundary, context
from stackyard.cli.factory import open_database
from stackyard.cli.render import OutputFormat
from stackyard.config import load_settings
from stackyard.errors import ConfigError
from stackyard.jobs.celery import QUEUE, CeleryDispatcher, Sweeper, make_celery, register_runner
from stackyard.jobs.runner import Periodic
from stackyard.providers.registry import devcloud_cloud_settings, needs_devcloud


def worker(
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=64, help="Jobs at once (default jobs.threads).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    debug: DebugOption = False,
) -> None:
    """Run queued jobs (exports, quota applies, reconciliations) published to the broker.

    Any number of workers on any hosts may share one broker and one database: a job runs once at a
    time (its row is leased), and a worker that dies mid-job leaves it to another, which resumes it.
    """
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        settings = load_settings()
        broker = settings.jobs.broker_url
        if not broker:
            raise ConfigError(
                "no broker: set STACKYARD_BROKER_URL (or jobs.broker_url), e.g. amqp://guest@host//"
            )
        open_database(settings)
        devcloud = devcloud_cloud_settings() if needs_devcloud(settings) else None
        state = build_state(settings, devcloud=devcloud)
        configure_logging(log_level)
        app = make_celery(broker)
        dispatcher = CeleryDispatcher(app)
        register_runner(app, state.runner, dispatcher)
        sweeper = Periodic("job-sweep", 30.0, Sweeper(state.sessions, state.runner.kinds, dispatcher).sweep)
        sweeper.start()
        threads = concurrency or settings.jobs.threads
        ctx.err.print(f"stackyard worker: {threads} thread(s) on queue {QUEUE!r}")
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={threads}",
                f"--loglevel={log_level.upper()}",
                f"--queues={QUEUE}",
                f"--hostname=stackyard-{os.getpid()}@{socket.gethostname()}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        sweeper.stop()
        state.close()
