"""The dashboard's inline SVG charts: values scaled to the largest, labels escaped, numbers described."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from stackyard.web.charts import Series, bar_chart, grouped_bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    # The charts are inline SVG in HTML (no namespace needed there); give one to parse them as XML.
    return ET.fromstring(str(markup).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_bars_scale_to_the_largest_value_and_describe_every_value() -> None:
    svg = parse(bar_chart("Instances by status", [("ACTIVE", 4), ("SHUTOFF", 2)], width=400))
    assert svg.get("role") == "img" and svg.get("aria-label") == "Instances by status"
    widths = [float(r.get("width") or 0) for r in svg.iter(f"{SVG}rect")]
    assert widths[0] == 2 * widths[1] > 0
    assert svg.find(f"{SVG}desc") is not None
    assert svg.findtext(f"{SVG}desc") == "ACTIVE: 4; SHUTOFF: 2"


def test_labels_are_escaped() -> None:
    markup = str(bar_chart("<b>t</b>", [("<script>alert(1)</script>", 1)]))
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    parse(markup)  # still well-formed


def test_an_empty_chart_says_so() -> None:
    assert parse(bar_chart("Nothing", [])).findtext(f"{SVG}desc") == "no data"
    assert parse(line_chart("Nothing", [], [])).findtext(f"{SVG}desc") == "no data"


def test_grouped_bars_have_a_legend_and_one_bar_per_series_and_group() -> None:
    svg = parse(
        grouped_bar_chart("Cores", ["CS101", "CS102"], [Series("granted", [8, 4]), Series("in use", [2, 0])])
    )
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "granted" in texts and "in use" in texts and "CS101" in texts
    assert len(list(svg.iter(f"{SVG}rect"))) == 2 + 4  # legend swatches + bars
    assert svg.findtext(f"{SVG}desc") == "CS101: granted 8, in use 2; CS102: granted 4, in use 0"


def test_lines_run_left_to_right_from_zero_to_the_top() -> None:
    svg = parse(line_chart("Cost", ["a", "b", "c"], [Series("p1", [0, 1, 2])], unit=" EUR", height=200))
    (line,) = list(svg.iter(f"{SVG}polyline"))
    points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    assert points[0][1] > points[1][1] > points[2][1]  # higher values are drawn higher
    assert re.search(r"p1: a 0 EUR, b 1 EUR, c 2 EUR", svg.findtext(f"{SVG}desc") or "")
