"""app/console/charts.py: inline SVG that loads nothing, a countable dot per point, escaped text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from app.console.charts import Series, line_chart

LABELS = [f"{hour:02d}:00" for hour in range(6)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def dots_of(root: ET.Element, index: int) -> list[ET.Element]:
    """What a browser test selects with `.serie-<index> circle.dot`."""
    found = []
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        if f"serie-{index}" in (group.get("class") or "").split():
            found += [
                c for c in group.iter("{http://www.w3.org/2000/svg}circle") if "dot" in c.get("class", "").split()
            ]
    return found


def test_a_chart_is_an_inline_svg_element_without_script_comment_or_external_reference() -> None:
    svg = str(line_chart("Throughput", LABELS, [Series("in", [1, 2, 3, 4, 5, 6])]))

    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "<script" not in svg
    assert "<!--" not in svg
    assert "xml-stylesheet" not in svg
    external = re.findall(r"(?:https?:)?//[\w.-]+", svg)
    assert set(external) <= {"http://www.w3.org"}, external  # the SVG namespace only: nothing to load


def test_each_value_is_one_dot_in_its_series_group_and_none_draws_no_dot() -> None:
    root = parse(
        str(line_chart("p95", LABELS, [Series("p50", [1, None, 3, 4, None, 6]), Series("p95", [0, 0, 0, 0, 0, 0])]))
    )

    assert len(dots_of(root, 0)) == 4
    assert len(dots_of(root, 1)) == 6  # a zero is a point


def test_each_dot_has_a_hover_title_naming_its_series_label_and_value() -> None:
    root = parse(str(line_chart("Volume", LABELS, [Series("orders", [10, 20, 30, 40, 50, 1234])])))

    titles = [
        title.text
        for group in root.iter("{http://www.w3.org/2000/svg}g")
        if "dots" in (group.get("class") or "").split()
        for title in group.findall("{http://www.w3.org/2000/svg}title")
    ]
    assert titles[-1] == "orders · 05:00: 1,234"
    assert len(titles) == 6


def test_the_chart_is_named_for_assistive_technology() -> None:
    root = parse(str(line_chart("Messages per hour", LABELS, [Series("in", [1] * 6)])))

    assert root.get("role") == "img"
    assert root.get("aria-label") == "Messages per hour"
    assert root.find("{http://www.w3.org/2000/svg}title").text == "Messages per hour"


def test_text_from_the_data_is_escaped() -> None:
    svg = str(line_chart("<b>t</b>", ["<x>"], [Series("<script>alert(1)</script>", [1])]))

    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "<b>" not in svg


def test_a_formatter_writes_the_hover_values() -> None:
    root = parse(str(line_chart("t", ["a", "b"], [Series("s", [1500.0, 2.5])], formatter=lambda v: f"{v:g} ms")))

    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "s · a: 1500 ms" in texts and "s · b: 2.5 ms" in texts


def test_a_series_with_a_value_count_unlike_the_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        line_chart("t", ["a", "b", "c"], [Series("s", [1, 2])])


def test_a_chart_without_any_value_says_so() -> None:
    svg = str(line_chart("t", ["a", "b"], [Series("s", [None, None])], no_data="Nothing yet"))

    assert "Nothing yet" in svg
    assert len(dots_of(parse(svg), 0)) == 0
