"""Colours the report and the dashboard share: each segment's, and the diverging scale of a
standardised difference (blue below the population, red above, near white around it)."""

from __future__ import annotations

from collections.abc import Sequence

Z_LIMIT = 2.0  # standardised differences beyond ±2 get the strongest colour
_NEGATIVE, _NEUTRAL, _POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)
# matplotlib's tab10 and tab20, the report's colours before it drew without matplotlib
TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
TAB20 = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)  # fmt: skip


def z_colour(z: float, limit: float = Z_LIMIT) -> str:
    """``z``'s colour on a diverging scale saturating at ``±limit``."""
    t = max(-1.0, min(1.0, z / limit))
    end = _POSITIVE if t > 0 else _NEGATIVE
    rgb = (round(n + (e - n) * abs(t)) for n, e in zip(_NEUTRAL, end, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a ``#rrggbb`` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ink_on(fill: str) -> str:
    """Black or white, whichever stands out more on ``fill``: on every colour of the z scale
    that is at least 4.5:1 (WCAG AA for small text). A switch at a fixed |z| left white on a
    mid blue at 2.7:1."""
    light = _luminance(fill)
    return "#000000" if (light + 0.05) / 0.05 >= 1.05 / (light + 0.05) else "#ffffff"


def segment_colours(ids: Sequence[str]) -> dict[str, str]:
    """Each segment's colour, in order: ten distinct ones, twenty beyond that (repeating
    past twenty)."""
    palette = TAB10 if len(ids) <= len(TAB10) else TAB20
    return {segment: palette[i % len(palette)] for i, segment in enumerate(ids)}
