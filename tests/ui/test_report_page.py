"""The training report's page in a real headless Chromium, served under the dashboard's
Content-Security-Policy: its figures (HTML tables and inline SVG) fit a phone's width and
print with their colours."""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np
import pytest

from app.colours import z_colour
from app.training.report import render_report
from app.ui.pages import REPORT_CSP
from tests.training.test_report import make_manifest, projection_for

URL = "http://report.test/"
# what of a figure reaches past the window's right edge (a wide table that scrolls in its
# own box is not cut off)
CUT_OFF = """[...document.querySelectorAll('figure, figure *, .outcomes, .outcomes *')]
  .filter(e => !e.closest('[style*="overflow-x"]'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .map(e => e.tagName + ' ' + (e.textContent || '').trim().slice(0, 30))"""


def opened(browser: Any, page_html: str, width: int) -> tuple[Any, Any, list[str]]:
    """A tab showing ``page_html`` with the report's headers; its console errors."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": REPORT_CSP}
    page.route(URL, lambda route: route.fulfill(status=200, body=page_html, headers=headers))
    page.goto(URL)
    return context, page, errors


def test_every_figure_fits_a_phone_screen(browser: Any) -> None:
    """At 375 px the selection curve, the size bars' figures and the outcome bars' figures
    were cut off at the screen's edge (a grid column wider than the screen), where the
    PNGs they replaced shrank to fit; and a name of one long word (an identifier, as names
    imported from a CRM often are) pushed the scatter's legend past it."""
    manifest = make_manifest()
    manifest.segments[3].name = "high_value_frequent_buyers_of_the_north_west_region"
    page_html = render_report(manifest, *projection_for(manifest, 2_000))
    context, page, errors = opened(browser, page_html, 375)
    try:
        assert page.evaluate(CUT_OFF) == []
        assert errors == []
    finally:
        context.close()


# the lines each heat-map row's feature label is set on
LABEL_LINES = """[...document.querySelectorAll('table.heat th[scope=row]')].map(th => {
  const range = document.createRange(); range.selectNodeContents(th);
  return [th.textContent, new Set([...range.getClientRects()].map(r => Math.round(r.top))).size];
})"""


@pytest.mark.parametrize(("width", "segments"), [(375, 8), (1280, 24)])
def test_the_heat_maps_feature_labels_read_across(browser: Any, width: int, segments: int) -> None:
    """Where the segments' columns are wider than the screen (eight on a phone, twenty-four
    on a laptop), the labels' column was squeezed to one letter: "recency days" set down
    the page a letter a line, the heat map 5,700 px tall."""
    manifest = make_manifest(segments, 15)
    page_html = render_report(manifest, *projection_for(manifest, 500))
    context, page, errors = opened(browser, page_html, width)
    try:
        lines = dict(page.evaluate(LABEL_LINES))
    finally:
        context.close()
    assert len(lines) == 15 and errors == []
    assert {label: n for label, n in lines.items() if n > 3} == {}


def fill_colours(pdf: bytes) -> set[str]:
    """The colours a PDF fills shapes with (from Chromium's compressed content streams)."""
    drawn = b""
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            drawn += zlib.decompress(stream)
        except zlib.error:  # (fonts and images)
            continue
    fills = re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) rg", drawn)
    return {"#{:02x}{:02x}{:02x}".format(*(round(float(c) * 255) for c in f)) for f in fills}


def test_a_printed_report_keeps_its_bars_and_heat_map(browser: Any) -> None:
    """Browsers print without background colours unless told otherwise, and the bars and
    the heat map's cells are backgrounds: a printed report had empty bar tracks and a
    colourless heat map, where the PNGs printed whole."""
    manifest = make_manifest(categorical=False)
    page_html = render_report(manifest, np.zeros((0, 2)), [])  # (no scatter's colours)
    context, page, errors = opened(browser, page_html, 1280)
    try:
        printed = fill_colours(page.pdf())  # as printing does, "background graphics" off
    finally:
        context.close()
    assert errors == []
    heat = set(re.findall(r'<td style="background:(#\w{6});color:', page_html))
    assert len(heat) > 20 and z_colour(0.0) not in heat  # (not the page's near-white)
    assert heat <= printed
    colours = re.findall(r'<span style="left:[\d.]+%;width:[\d.]+%;background:(#\w{6})"', page_html)
    assert len(set(colours)) == len(manifest.segments)  # one bar colour per segment
    assert set(colours) <= printed


# what of the whole page reaches past the window's right edge, outside a box that scrolls
PAGE_CUT_OFF = """[...document.querySelectorAll('main *')]
  .filter(e => !e.closest('.wide, [style*="overflow-x"]'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .map(e => e.tagName + ' ' + (e.textContent || '').trim().slice(0, 30))"""


def test_the_pages_own_tables_scroll_in_their_box_on_a_phone(browser: Any) -> None:
    """The segment, candidate, effect and category tables ran wider than a phone, so the
    whole page scrolled sideways and every caption with it; each now scrolls in its box."""
    manifest = make_manifest()
    manifest.selection.method = "balanced"  # (the candidate table too)
    page_html = render_report(manifest, *projection_for(manifest, 500))
    context, page, errors = opened(browser, page_html, 375)
    try:
        assert page.evaluate(PAGE_CUT_OFF) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert errors == []
    finally:
        context.close()
