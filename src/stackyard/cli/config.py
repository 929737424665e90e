"""`stackyard config ...`: convert credentials people already have into the files stackyard reads."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from stackyard.cli.output import fail
from stackyard.cloud.openrc import credential_problems, openrc_to_clouds_yaml, parse_openrc
from stackyard.errors import ConfigError, StackyardError, ValidationError

app = typer.Typer(no_args_is_help=True, help="Create and convert stackyard's cloud configuration.")

_SECRET_KEY_RE = re.compile(r"^\s*(password|token|application_credential_secret):", re.MULTILINE)


def _default_name(path: Path) -> str:
    # Horizon offers "<project>-openrc.sh"; the project is the natural cloud name.
    stem = path.name.removesuffix(".sh").removesuffix(".txt")
    stem = re.sub(r"[-_.]?openrc$", "", stem)
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "-", stem).strip("-.")
    return stem or "openstack"


def _write_private(path: Path, text: str) -> None:
    """Create `path` mode 0600 from the start (no window where it is readable), never overwriting."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists: not overwritten; choose another --output-dir or merge by hand"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


@app.command("from-openrc")
def from_openrc(
    file: Annotated[Path, typer.Argument(help="The openrc file (e.g. Horizon's PROJECT-openrc.sh).")],
    name: Annotated[
        str | None,
        typer.Option(
            help="Cloud name in clouds.yaml (default: from the file name, e.g. demo-openrc.sh gives demo)."
        ),
    ] = None,
    split_secrets: Annotated[
        bool,
        typer.Option("--split-secrets", help="Put the password/secret in secure.yaml (needs --output-dir)."),
    ] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Write clouds.yaml (and secure.yaml) here, mode 0600, instead of printing."),
    ] = None,
) -> None:
    """Convert an openrc file into a clouds.yaml cloud entry (the file is read, never executed)."""
    err = Console(stderr=True, soft_wrap=True)  # one line per message, however narrow the terminal
    try:
        if split_secrets and output_dir is None:
            raise ValidationError("--split-secrets", "needs --output-dir: secure.yaml is written as a file")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a UTF-8 text file"
            raise ConfigError(f"cannot read {file}: {reason}") from None
        values = parse_openrc(text)
        cloud = name or _default_name(file)
        for problem in credential_problems(values):
            err.print(f"[yellow]warning:[/yellow] {escape(problem)}")
        if values.ignored:
            lines = ", ".join(str(number) for number in values.ignored)
            what = "line" if len(values.ignored) == 1 else "lines"
            err.print(
                f"[yellow]warning:[/yellow] ignored {what} {lines} of {escape(str(file))} "
                "(only export, unset and read are understood)"
            )
        if output_dir is None:
            document = openrc_to_clouds_yaml(values, cloud)
            sys.stdout.write(document)
            if _SECRET_KEY_RE.search(document):
                err.print(
                    "[yellow]warning:[/yellow] this clouds.yaml contains a secret: keep it mode 0600, or use "
                    "--split-secrets --output-dir DIR to keep the secret in secure.yaml"
                )
            return
        written = _write_files(output_dir, cloud, values, split_secrets=split_secrets)
    except StackyardError as exc:
        fail(err, exc)
    err.print(f"wrote {', '.join(escape(str(path)) for path in written)} (cloud {escape(cloud)})")
    err.print(
        f"use it with: OS_CLIENT_CONFIG_FILE={escape(str(written[0]))}"
        + (f" OS_CLIENT_SECURE_FILE={escape(str(written[1]))}" if len(written) > 1 else "")
        + f" stackyard ... --cloud {escape(cloud)}"
    )


def _write_files(directory: Path, cloud: str, values: dict[str, str], *, split_secrets: bool) -> list[Path]:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc.strerror}") from None
    clouds_path = directory / "clouds.yaml"
    if not split_secrets:
        _write_private(clouds_path, openrc_to_clouds_yaml(values, cloud))
        return [clouds_path]
    clouds_text, secure_text = openrc_to_clouds_yaml(values, cloud, split_secrets=True)
    secure_path = directory / "secure.yaml"
    if secure_path.exists():  # checked first so that neither file is written when one is in the way
        raise ConfigError(f"{secure_path} already exists: not overwritten; choose another --output-dir")
    _write_private(clouds_path, clouds_text)
    _write_private(secure_path, secure_text)
    return [clouds_path, secure_path]
