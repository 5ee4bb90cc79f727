"""Reading a console chart (app/console/charts.py) out of a page, as a browser test counts it: the inline ``<svg>``
inside ``<figure id=...>``, and per series (``.serie-<n>``) its points (``circle.dot``) with their hover texts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def chart(page: str, figure_id: str) -> ET.Element:
    """The SVG of ``<figure ... id="figure_id">`` in ``page``."""
    found = re.search(rf'<figure[^>]*\bid="{re.escape(figure_id)}"[^>]*>\s*(<svg.*?</svg>)\s*</figure>', page, re.S)
    assert found is not None, f"no chart in <figure id={figure_id!r}>"
    return ET.fromstring(found.group(1))


def points(svg: ET.Element) -> dict[int, list[str]]:
    """Per series index, the hover text of each of its points (one per ``circle.dot``), in x order."""
    series: dict[int, list[str]] = {}
    for group in svg.iter(f"{SVG}g"):
        classes = (group.get("class") or "").split()
        index = next((int(c[6:]) for c in classes if c.startswith("serie-") and c[6:].isdigit()), None)
        if index is None:
            continue
        for dots in group.iter(f"{SVG}g"):
            if "dots" not in (dots.get("class") or "").split():
                continue
            for circle in dots.findall(f"{SVG}circle"):
                if "dot" in (circle.get("class") or "").split():
                    title = dots.find(f"{SVG}title")
                    series.setdefault(index, []).append(title.text or "" if title is not None else "")
    return series


def legend(svg: ET.Element) -> list[str]:
    """The series' titles as the legend shows them."""
    return [
        text.text or ""
        for group in svg.iter(f"{SVG}g")
        if "legends" in (group.get("class") or "").split()
        for text in group.iter(f"{SVG}text")
    ]
