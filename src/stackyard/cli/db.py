"""`stackyard db`: apply and inspect the database schema migrations."""

from __future__ import annotations

import typer

from stackyard.cli.common import DebugOption, boundary, context
from stackyard.cli.render import OutputFormat
from stackyard.config import load_settings
from stackyard.db.engine import make_engine, redacted_url
from stackyard.db.migrate import current_revision, head_revision, upgrade

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("head", help="Target revision."),
    debug: DebugOption = False,
) -> None:
    """Migrate the configured database (STACKYARD_DATABASE_URL, else SQLite in the data dir)."""
    with boundary(context(None, None, OutputFormat.TABLE, debug)):
        settings = load_settings()
        engine = make_engine(settings.effective_database_url)
        upgrade(engine, revision)
        typer.echo(f"{redacted_url(settings.effective_database_url)}: at revision {current_revision(engine)}")


@app.command("current")
def current_command(debug: DebugOption = False) -> None:
    """Show the database's revision and the newest one this stackyard knows."""
    with boundary(context(None, None, OutputFormat.TABLE, debug)):
        settings = load_settings()
        engine = make_engine(settings.effective_database_url)
        typer.echo(f"database: {current_revision(engine) or 'empty'}  head: {head_revision()}")
