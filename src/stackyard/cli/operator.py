"""`stackyard operator run|receiver`: the Kubernetes operator for OpenstackConfig, and a test receiver."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from typing import Annotated

import typer

from stackyard.api.logs import configure_logging
from stackyard.cli.common import DebugOption, boundary, context
from stackyard.cli.factory import open_database
from stackyard.cli.render import OutputFormat
from stackyard.config import load_settings
from stackyard.inventory.events import queue_name
from stackyard.inventory.notifications import NOTIFICATIONS_URL_ENV, NotificationWatcher, settings_from
from stackyard.operator.handlers import Runtime, run_operator
from stackyard.operator.kube import KubeClient
from stackyard.operator.reconcile import Reconciler

_LOG = logging.getLogger(__name__)

operator_app = typer.Typer(help="Kubernetes operator: OpenstackConfig resources → network inventory.")


@operator_app.command("run")
def operator_run(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Watch this namespace (repeatable; default all)."),
    ] = None,
    peering: Annotated[
        str | None,
        typer.Option(
            help="kopf peering name shared by the replicas (needs deploy/peering.yaml); none: standalone."
        ),
    ] = None,
    priority: Annotated[int, typer.Option(help="Peering priority: the highest live replica acts.")] = 0,
    liveness: Annotated[
        str | None, typer.Option(help="Serve a liveness probe, e.g. http://0.0.0.0:8080/healthz.")
    ] = None,
    notifications_url: Annotated[
        str | None,
        typer.Option(
            help=f"Broker the cloud's Neutron/Nova notifications go to (amqp://…; holds a password, so "
            f"prefer ${NOTIFICATIONS_URL_ENV} or inventory.notifications.url_env). None: polling only."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    debug: DebugOption = False,
) -> None:
    """Watch OpenstackConfig resources and keep their node configs synced and pushed.

    Connects with the kubeconfig ($KUBECONFIG, ~/.kube/config) or, in a pod, its service account.
    The inventory goes to the configured database (STACKYARD_DATABASE_URL), which replicas share.
    """
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        settings = load_settings()
        sessions = open_database(settings)
        configure_logging(log_level)
        # A line per Kubernetes request (each status write, each Secret read) drowns what matters.
        for noisy in ("httpx", "amqp", "kombu"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
        section = settings.inventory.notifications
        notify = settings_from(section, os.environ, url=notifications_url)
        if notify is not None and "queue" not in section:
            # Each replica needs every event, so each has its own queue (in a pod, the hostname is the pod's).
            notify = replace(notify, queue=queue_name(f"operator-{socket.gethostname()}"))

        def make_reconciler(kube: KubeClient) -> Reconciler:
            return Reconciler(kube, sessions)

        runtime = Runtime(make_reconciler, NotificationWatcher(notify) if notify is not None else None)
    if runtime.watcher is not None:
        _LOG.info(
            "notifications from %s on queue %s",
            runtime.watcher.settings.redacted_url,
            runtime.watcher.settings.queue,
        )
        runtime.watcher.start()
    try:
        run_operator(
            runtime, namespaces=tuple(namespace or ()), peering=peering, priority=priority, liveness=liveness
        )
    finally:
        if runtime.watcher is not None:
            runtime.watcher.stop()


@operator_app.command("receiver")
def operator_receiver(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    token_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the bearer token to demand.")
    ] = None,
) -> None:
    """Run a minimal node-config receiver (POST/GET /v1/node-configs) to try the operator against."""
    import uvicorn

    from stackyard.operator.receiver import create_receiver

    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        raise typer.BadParameter(f"environment variable {token_env} is not set", param_hint="--token-env")
    uvicorn.run(create_receiver(token), host=host, port=port, log_level="info")
