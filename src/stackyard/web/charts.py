"""Inline SVG charts drawn on the server: horizontal bars, grouped bars and lines (pure; no JavaScript).

Each chart is an accessible `<svg role="img">` with a title and a description listing every value, so
a screen reader gets the numbers a sighted reader gets from the shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#0b5cad", "#b34700", "#1a6b34", "#6b2fa3", "#a3201a", "#00707a")  # >= 4.5:1 on white
_ROW = 26
_LABEL = 150
_VALUE = 90


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}"


def _svg(width: int, height: int, title: str, description: str, body: str) -> Markup:
    # Every text interpolated into the charts passes through escape(); numbers are formatted here.
    return Markup(  # noqa: S704
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title><desc>{escape(description)}</desc>'
        f"{body}</svg>"
    )


def bar_chart(title: str, items: Sequence[tuple[str, float]], *, unit: str = "", width: int = 560) -> Markup:
    """One horizontal bar per (label, value), scaled to the largest value."""
    top = max((v for _, v in items), default=0) or 1
    label_w = min(_LABEL, width // 3)
    plot = width - label_w - _VALUE
    rows = []
    for index, (label, value) in enumerate(items):
        y = index * _ROW + 4
        length = max(0.0, value) / top * plot
        rows.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(label[:22])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{length:.1f}" height="{_ROW - 8}"'
            f' fill="{PALETTE[0]}"></rect>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 14}">{escape(_fmt(value))}{escape(unit)}</text>'
        )
    described = "; ".join(f"{label}: {_fmt(value)}{unit}" for label, value in items) or "no data"
    return _svg(width, max(1, len(items)) * _ROW + 8, title, described, "".join(rows))


def grouped_bar_chart(
    title: str, groups: Sequence[str], series: Sequence[Series], *, unit: str = "", width: int = 560
) -> Markup:
    """Per group (a row), one bar per series, with a legend; values scaled to the largest."""
    top = max((v for s in series for v in s.values), default=0) or 1
    plot = width - _LABEL - _VALUE
    bar = 12
    step = bar * max(1, len(series)) + 10
    legend = "".join(
        f'<rect x="{_LABEL + i * 130}" y="4" width="12" height="12"'
        f' fill="{PALETTE[i % len(PALETTE)]}"></rect>'
        f'<text x="{_LABEL + i * 130 + 16}" y="15">{escape(s.name)}</text>'
        for i, s in enumerate(series)
    )
    rows = []
    for g, group in enumerate(groups):
        y0 = 26 + g * step
        rows.append(
            f'<text x="{_LABEL - 6}" y="{y0 + step / 2}" text-anchor="end">{escape(group[:22])}</text>'
        )
        for i, s in enumerate(series):
            value = s.values[g] if g < len(s.values) else 0
            length = max(0.0, value) / top * plot
            y = y0 + i * bar
            rows.append(
                f'<rect x="{_LABEL}" y="{y}" width="{length:.1f}" height="{bar - 2}"'
                f' fill="{PALETTE[i % len(PALETTE)]}"></rect>'
                f'<text x="{_LABEL + length + 4:.1f}" y="{y + bar - 3}" font-size="10">'
                f"{escape(_fmt(value))}</text>"
            )
    described = (
        "; ".join(
            f"{group}: "
            + ", ".join(f"{s.name} {_fmt(s.values[g] if g < len(s.values) else 0)}{unit}" for s in series)
            for g, group in enumerate(groups)
        )
        or "no data"
    )
    return _svg(width, 30 + max(1, len(groups)) * step, title, described, legend + "".join(rows))


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    width: int = 560,
    height: int = 240,
) -> Markup:
    """One line per series over the labels (x), from zero to the largest value, with a legend."""
    left, right, top_pad, bottom = 60, 16, 28, 30
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = max((v for s in series for v in s.values), default=0) or 1
    count = max(1, len(labels) - 1)

    def xy(i: int, value: float) -> tuple[str, str]:
        return f"{left + i * plot_w / count:.1f}", f"{top_pad + plot_h - max(0.0, value) / top * plot_h:.1f}"

    def point(i: int, value: float) -> str:
        return ",".join(xy(i, value))

    axes = (
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}"'
        ' stroke="#4a5562"></line>'
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#4a5562"></line>'
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{escape(_fmt(top))}{escape(unit)}</text>'
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>'
    )
    ticks = "".join(
        f'<text x="{left + i * plot_w / count:.1f}" y="{height - 10}" text-anchor="middle">'
        f"{escape(label)}</text>"
        for i, label in enumerate(labels)
        if len(labels) <= 8 or i % max(1, len(labels) // 7) == 0
    )
    lines = []
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(point(j, v) for j, v in enumerate(s.values))
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{points}"></polyline>'
            + "".join(
                '<circle cx="{}" cy="{}" r="3" fill="{}"></circle>'.format(*xy(j, v), colour)
                for j, v in enumerate(s.values)
            )
            + f'<rect x="{left + i * 150}" y="6" width="12" height="12" fill="{colour}"></rect>'
            f'<text x="{left + i * 150 + 16}" y="17">{escape(s.name[:18])}</text>'
        )
    described = (
        "; ".join(
            f"{s.name}: "
            + ", ".join(f"{label} {_fmt(v)}{unit}" for label, v in zip(labels, s.values, strict=False))
            for s in series
        )
        or "no data"
    )
    return _svg(width, height, title, described, axes + ticks + "".join(lines))
