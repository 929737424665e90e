"""Options every cloud command shares (--cloud, --region, -f, --debug) and the error boundary."""

from __future__ import annotations

import contextlib
import getpass
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console

from stackyard.cli.output import fail
from stackyard.cli.render import OutputFormat
from stackyard.errors import StackyardError

CloudOption = Annotated[
    str | None, typer.Option("--cloud", envvar="OS_CLOUD", help="Cloud name in clouds.yaml [env OS_CLOUD].")
]
RegionOption = Annotated[
    str | None, typer.Option("--region", envvar="OS_REGION_NAME", help="Region [env OS_REGION_NAME].")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks and HTTP debug logging.")]


@dataclass(frozen=True)
class CommandContext:
    cloud: str | None
    region: str | None
    fmt: OutputFormat
    debug: bool
    out: Console
    err: Console


def context(cloud: str | None, region: str | None, fmt: OutputFormat, debug: bool) -> CommandContext:
    if debug:
        logging.basicConfig(level=logging.DEBUG)
    # Piped tables keep every column whole instead of squeezing into 80 columns.
    out = Console() if sys.stdout.isatty() else Console(width=4096)
    return CommandContext(cloud, region, fmt, debug, out, Console(stderr=True, soft_wrap=True))


@contextlib.contextmanager
def boundary(ctx: CommandContext) -> Iterator[None]:
    """Map stackyard errors to one line and an exit code; tracebacks only with --debug."""
    try:
        yield
    except StackyardError as exc:
        if ctx.debug:
            ctx.err.print_exception()
        fail(ctx.err, exc)
    except KeyboardInterrupt:
        ctx.err.print("interrupted")
        sys.exit(130)


def local_actor() -> str:
    """Who runs a command, for audit logs and jobs."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name for this uid (a bare container)
        return "cli"
