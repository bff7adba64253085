"""The HTML report written beside every trained version (``report.html``).

One self-contained page an analyst opens in a browser: plots are inline PNGs, the CSS is
inline, and nothing is fetched from the network, so the file can be mailed or archived as is.
Figures are drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas) without pyplot or
rcParams changes, so importing or rendering touches no global matplotlib state. Each segment
keeps one colour in every plot and table. All text from the manifest (segment names, rules and
descriptions are user-edited) goes through ``html.escape``; text drawn in plots has ``$``
escaped so mathtext never interprets it.
"""

from app.training.report.page import render_report, write_report

__all__ = ["render_report", "write_report"]
