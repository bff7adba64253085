"""The training report's page in a real headless Chromium, served under the dashboard's
Content-Security-Policy: its figures (HTML tables and inline SVG) fit a phone's width."""

from __future__ import annotations

from typing import Any

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
    PNGs they replaced shrank to fit."""
    manifest = make_manifest()
    page_html = render_report(manifest, *projection_for(manifest, 2_000))
    context, page, errors = opened(browser, page_html, 375)
    try:
        assert page.evaluate(CUT_OFF) == []
        assert errors == []
    finally:
        context.close()
