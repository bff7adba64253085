"""The HTML report written beside every trained version (``report.html``).

One self-contained page an analyst opens in a browser: figures are inline SVG and HTML
(``plots``), the CSS is inline, and nothing is fetched from the network, so the file can be
mailed or archived as is. Each segment keeps one colour in every figure and table. All text
from the manifest (segment names, rules and descriptions are user-edited) goes through
``html.escape``.
"""

from app.training.report.page import render_report, write_report

__all__ = ["render_report", "write_report"]
