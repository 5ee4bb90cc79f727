"""The console's charts: pygal line charts rendered on the server as inline SVG (no JavaScript library, no CDN).

pygal writes an inline ``<script>`` (its tooltip configuration) into every chart and, by default, links its tooltip
script from a CDN; the console's Content-Security-Policy forbids both and operators' networks are often closed. So
``js=[]`` and an XML filter drop every ``<script>`` and comment before the SVG is written; hover text comes from a
plain SVG ``<title>`` per point instead (_Line), which every browser shows natively.

Each point of a series is one ``circle.dot`` inside the series' ``g.serie-<index>`` group (a value of None draws no
dot: no data there), so a browser test counts a chart's points with
``document.querySelectorAll("#<figure id> .serie-0 circle.dot").length``. Colours come from the Okabe-Ito palette
(told apart by colour-blind readers) and every series also has its own dash pattern, so colour is never the only
signal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

WIDTH = 880  # the SVG's viewBox: it scales to the width of its container (console.css `.chart svg`)
HEIGHT = 300
MAX_X_LABELS = 12  # labels shown under the x axis; every point keeps its own label in its hover text
CHAR_PX = 7.5  # about the width of a character of a label or legend (12-13 px system font), to keep them apart
MANY_POINTS = 60  # a series with more points than this gets smaller dots
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
DASHES = (None, "6,3", "2,3", "8,3,2,3", "10,4", "1,2", "4,4", "12,3")

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1d2430",
    foreground_strong="#1d2430",
    foreground_subtle="#5b6675",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=15,
    no_data_font_size=20,
    guide_stroke_color="#dde1e7",
    major_guide_stroke_color="#c4cad3",
    stroke_width="2",
    colors=OKABE_ITO,
)


@dataclass(frozen=True)
class Series:
    """One line: a title (in the legend) and a value per x label (None: no data at that point, no dot)."""

    title: str
    values: Sequence[float | None]


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    formatter: Callable[[float], str] | None = None,
    y_title: str | None = None,
    no_data: str = "No data in this range",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """An inline ``<svg>`` line chart, safe to put in a page as it is (every text is escaped by the XML writer).

    ``labels`` name the x positions; each series has one value per label. ``formatter`` writes a value for the
    y axis and the hover text (default: the number). ``width`` by ``height`` is the viewBox: give a chart meant for
    half a page a smaller width, so its text keeps its size."""
    for one in series:
        if len(one.values) != len(labels):
            raise ValueError(f"series {one.title!r} has {len(one.values)} values for {len(labels)} labels")
    fmt = formatter or _plain
    longest_label = max((len(label) for label in labels), default=1)
    shown_labels = max(2, min(MAX_X_LABELS, int(width * 0.85 // (longest_label * CHAR_PX + 16))))
    longest_title = max((len(one.title) for one in series), default=1)
    legend_columns = max(1, min(len(series), int(width // (longest_title * CHAR_PX + 40))))
    chart = _Line(
        style=STYLE,
        width=width,
        height=height,
        js=[],  # no pygal.js from its CDN (and the inline script is dropped by _offline below)
        disable_xml_declaration=True,  # an element to inline in HTML, not an .svg document
        show_legend=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=legend_columns,
        truncate_legend=-1,
        truncate_label=-1,
        dots_size=3 if len(labels) <= MANY_POINTS else 1.5,
        allow_interruptions=True,  # a gap where there is no data, not a line drawn across it
        include_x_axis=True,  # a count or a duration starts at zero
        show_minor_x_labels=False,
        x_labels_major_every=max(1, math.ceil(len(labels) / shown_labels)),
        value_formatter=fmt,
        y_title=y_title,
        no_data_text=no_data,
        margin=8,
    )
    chart.x_labels = list(labels)
    for index, one in enumerate(series):
        dash = DASHES[index % len(DASHES)]
        chart.add(one.title, list(one.values), stroke_style={"width": 2, "dasharray": dash} if dash else {"width": 2})
    chart.add_xml_filter(_offline(title, [one.title for one in series]))
    return Markup(chart.render(is_unicode=True))


class _Line(pygal.Line):
    """pygal's line chart with a plain SVG ``<title>`` ("<x label>: <value>") as each point's hover text, in place
    of the four ``<desc>`` elements pygal writes for its tooltip script (which the console does not load): a third
    of the nodes, and of the time, of a chart with many points."""

    def _tooltip_data(
        self, node: Any, value: str, x: float, y: float, classes: Any = None, xlabel: str | None = None
    ) -> None:
        self.svg.node(node, "title").text = f"{xlabel}: {value}" if xlabel else str(value)


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _offline(title: str, series_titles: list[str]) -> Callable[[Any], Any]:
    """The XML filter: no script, no comment (pygal's mention its web site), an accessible name, and each point's
    hover text led by its series' title ("<series> · <x label>: <value>")."""

    def apply(root: Any) -> Any:
        for parent in list(root.iter()):
            for child in list(parent):
                if not isinstance(child.tag, str) or child.tag == "script":  # a comment (or PI), a script
                    parent.remove(child)
        root.set("role", "img")
        root.set("aria-label", title)
        for node in root.iter("title"):
            node.text = title
            break
        for group in list(root.iter("g")):
            index = _serie_index(group.get("class", ""))
            if index is None:
                continue
            name = series_titles[index] if index < len(series_titles) else f"series {index + 1}"
            for dots in group.iter("g"):
                if "dots" in dots.get("class", "").split():
                    for hover in dots.iter("title"):
                        hover.text = f"{name} · {hover.text}"
        return root

    return apply


def _serie_index(classes: str) -> int | None:
    for name in classes.split():
        if name.startswith("serie-") and name[6:].isdigit():
            return int(name[6:])
    return None
