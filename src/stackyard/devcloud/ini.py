"""Render oslo.config / paste style INI files from plain dictionaries."""

from __future__ import annotations

from collections.abc import Mapping

Sections = Mapping[str, Mapping[str, str | int | float | bool]]


def _value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_ini(sections: Sections) -> str:
    """Sections in the given order, keys in the given order; empty sections are kept (oslo needs some)."""
    chunks: list[str] = []
    for section, options in sections.items():
        lines = [f"[{section}]"]
        lines.extend(f"{key} = {_value(value)}" for key, value in options.items())
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks) + "\n"
