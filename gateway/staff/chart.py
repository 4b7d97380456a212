"""Payments per day per coin as an inline SVG bar chart, drawn on the server: no script,
no other origin. Bars are grouped by day, one colour per coin; heights are the count of
payments."""

from collections.abc import Mapping
from datetime import date
from xml.sax.saxutils import escape

COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#9b2c2c")


def payments_chart(counts: Mapping[date, Mapping[str, int]], coins: list[str],
                   width: int = 720, height: int = 220) -> str:
    days = sorted(counts)
    if not days or not coins:
        return ""
    left, bottom, top = 40, 40, 16
    plot_h = height - bottom - top
    peak = max((n for day in counts.values() for n in day.values()), default=0) or 1
    slot = (width - left - 10) / len(days)
    bar = max(min(slot * 0.8 / len(coins), 40), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-title"><title id="chart-title">Payments per day per '
             f'coin</title>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
             f'stroke="#444"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}'
             '</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0'
             '</text>']
    for i, day in enumerate(days):
        x0 = left + i * slot + (slot - bar * len(coins)) / 2
        for j, coin in enumerate(coins):
            n = counts[day].get(coin, 0)
            h = plot_h * n / peak
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[j % len(COLOURS)]}">'
                f'<title>{escape(coin)} {day.isoformat()}: {n}</title></rect>')
        if len(days) <= 14 or i % max(len(days) // 10, 1) == 0:
            parts.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 14}" '
                         f'text-anchor="middle" font-size="10">{day.strftime("%m-%d")}</text>')
    for j, coin in enumerate(coins):
        x = left + j * 80
        parts.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" '
                     f'fill="{COLOURS[j % len(COLOURS)]}"/>'
                     f'<text x="{x + 14}" y="{height - 5}" font-size="11">{escape(coin)}</text>')
    parts.append("</svg>")
    return "".join(parts)
