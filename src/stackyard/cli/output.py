"""Shared CLI plumbing: error → exit code mapping and one-line error messages."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from stackyard.errors import CloudError, ConfigError, StackyardError, ValidationError

EXIT_OK = 0
EXIT_CLOUD = 1
EXIT_USAGE = 2


def exit_code_for(exc: StackyardError) -> int:
    if isinstance(exc, ValidationError | ConfigError):
        return EXIT_USAGE
    if isinstance(exc, CloudError):
        return EXIT_CLOUD
    return EXIT_CLOUD


def fail(console: Console, exc: StackyardError) -> NoReturn:
    console.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
    raise typer.Exit(exit_code_for(exc))
