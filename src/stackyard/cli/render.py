"""Output formats shared by every command: rich table, json, yaml, csv, value — streamed where possible."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TextIO

import yaml
from rich.console import Console
from rich.table import Table

Cell = str | int | float | bool | None | list[str] | dict[str, str]
Row = Mapping[str, Cell]


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    CSV = "csv"
    VALUE = "value"


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def emit_rows(
    rows: Iterable[Row], columns: Sequence[str], fmt: OutputFormat, out: TextIO, console: Console
) -> int:
    """Write rows; json/csv/value stream one row at a time (memory flat in the row count)."""
    count = 0
    if fmt is OutputFormat.JSON:
        out.write("[")
        for row in rows:
            out.write(",\n  " if count else "\n  ")
            out.write(json.dumps({c: row.get(c) for c in columns}, default=str))
            count += 1
        out.write("\n]\n" if count else "]\n")
    elif fmt is OutputFormat.CSV:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row.get(c)) for c in columns])
            count += 1
    elif fmt is OutputFormat.VALUE:
        for row in rows:
            out.write(" ".join(_text(row.get(c)) for c in columns) + "\n")
            count += 1
    elif fmt is OutputFormat.YAML:
        for row in rows:
            out.write(
                yaml.safe_dump([{c: row.get(c) for c in columns}], sort_keys=False, default_flow_style=False)
            )
            count += 1
        if not count:
            out.write("[]\n")
    else:
        table = Table(*[c.replace("_", " ").title() for c in columns])
        for row in rows:
            table.add_row(*[_text(row.get(c)) for c in columns])
            count += 1
        console.print(table)
    out.flush()
    return count


def emit_one(row: Row, fmt: OutputFormat, out: TextIO, console: Console) -> None:
    """One resource: a field/value table, or the object itself in json/yaml."""
    if fmt is OutputFormat.JSON:
        out.write(json.dumps(dict(row), indent=2, default=str) + "\n")
    elif fmt is OutputFormat.YAML:
        out.write(yaml.safe_dump(dict(row), sort_keys=False, default_flow_style=False))
    elif fmt is OutputFormat.CSV:
        writer = csv.writer(out)
        writer.writerow(list(row))
        writer.writerow([_text(v) for v in row.values()])
    elif fmt is OutputFormat.VALUE:
        for value in row.values():
            out.write(_text(value) + "\n")
    else:
        table = Table("Field", "Value")
        for key, value in row.items():
            table.add_row(key, _text(value))
        console.print(table)
    out.flush()
