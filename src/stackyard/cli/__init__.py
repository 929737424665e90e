"""The `stackyard` command line: one Typer sub-app per noun."""

from __future__ import annotations

from stackyard.cli.root import app, main

__all__ = ["app", "main"]
