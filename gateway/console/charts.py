"""Charts drawn on the server as SVG: no script, no build step, readable without JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 720, 220, 28


def day_bars(first: date, last: date, totals: Mapping[date, tuple[int, int]]) -> Markup:
    """Orders (dark) and products (light) per day from ``first`` to ``last``, each day's figures in its tooltip."""
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    peak = max((max(totals.get(day, (0, 0))) for day in days), default=0) or 1
    slot = (WIDTH - 2 * PAD) / max(len(days), 1)
    bar = max(slot / 2 - 1, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="orders and products per day" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>',
        f'<text x="{PAD}" y="14" class="label">peak {peak:,}</text>',
    ]
    for index, day in enumerate(days):
        orders, products = totals.get(day, (0, 0))
        x = PAD + index * slot
        for offset, value, kind in ((0.0, orders, "orders"), (bar + 1, products, "products")):
            height = (HEIGHT - 2 * PAD) * value / peak
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{HEIGHT - PAD - height:.1f}" width="{bar:.1f}" height="{height:.1f}" class="{kind}">'
                f"<title>{escape(day.isoformat())}: {value:,} {kind}</title></rect>"
            )
        if len(days) <= 16 or index % max(len(days) // 8, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" class="label">{day:%m-%d}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
