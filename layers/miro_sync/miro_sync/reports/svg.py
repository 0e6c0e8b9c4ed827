"""Small inline SVG charts for the HTML report.

Hand-written on purpose: the report must be one offline file with no JavaScript or CDN, and the
charting libraries that emit static SVG (matplotlib, pygal) would add megabytes for three chart
shapes. Every label is escaped; charts carry a <title> for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    caption: str  # what is printed next to the bar (e.g. "12 seats · $240.00")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[datetime, float]]
    color: str = PALETTE[0]


def _empty(title: str, width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#64748b" {_FONT}>'
        "no data</text></svg>"
    )


def horizontal_bars(title: str, bars: Sequence[Bar], *, width: int = 640, color: str = PALETTE[0]) -> str:
    row, label_width, caption_width = 26, 170, 150
    height = max(row * len(bars) + 10, 40)
    if not bars:
        return _empty(title, width, 60)
    top = max((bar.value for bar in bars), default=0) or 1
    span = width - label_width - caption_width
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
    ]
    for index, bar in enumerate(bars):
        y = 5 + index * row
        length = span * bar.value / top
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end" fill="#0f172a" {_FONT}>'
            f"{escape(_clip(bar.label, 26))}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" rx="3" '
            f'fill="{color}">'
            f"<title>{escape(bar.label)}: {escape(bar.caption)}</title></rect>"
            f'<text x="{label_width + length + 6:.1f}" y="{y + 16}" fill="#334155" {_FONT}>'
            f"{escape(bar.caption)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def vertical_bars(title: str, bars: Sequence[Bar], *, width: int = 640, height: int = 240) -> str:
    if not bars:
        return _empty(title, width, height)
    top = max((bar.value for bar in bars), default=0) or 1
    bottom, head = 40, 28
    slot = width / len(bars)
    bar_width = min(90.0, slot * 0.6)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
        f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#cbd5e1"/>'
    ]
    for index, bar in enumerate(bars):
        bar_height = (height - bottom - head) * bar.value / top
        x = index * slot + (slot - bar_width) / 2
        y = height - bottom - bar_height
        color = PALETTE[index % len(PALETTE)]
        center = index * slot + slot / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{bar_height:.1f}" rx="3" '
            f'fill="{color}"><title>{escape(bar.label)}: {escape(bar.caption)}</title></rect>'
            f'<text x="{center:.1f}" y="{y - 6:.1f}" text-anchor="middle" fill="#0f172a" {_FONT}>'
            f"{escape(bar.caption)}</text>"
            f'<text x="{center:.1f}" y="{height - bottom + 18}" text-anchor="middle" fill="#334155" {_FONT}>'
            f"{escape(bar.label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: Sequence[Series], *, width: int = 640, height: int = 260) -> str:
    points = [point for line in series for point in line.points]
    if not points:
        return _empty(title, width, height)
    left, right, top_pad, bottom = 48, 16, 16, 56
    times = [moment.timestamp() for moment, _ in points]
    start, end = min(times), max(times)
    time_span = (end - start) or 1.0
    high = max(value for _, value in points) or 1.0
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def xy(moment: datetime, value: float) -> tuple[float, float]:
        x = left + (plot_w / 2 if end == start else plot_w * (moment.timestamp() - start) / time_span)
        return x, top_pad + plot_h * (1 - value / high)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" '
        'stroke="#cbd5e1"/>'
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#cbd5e1"/>'
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" fill="#64748b" {_FONT}>{high:g}</text>'
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end" fill="#64748b" {_FONT}>0</text>'
    ]
    first, last = min(points)[0], max(points)[0]
    parts.append(
        f'<text x="{left}" y="{top_pad + plot_h + 16}" fill="#64748b" {_FONT}>{first:%Y-%m-%d}</text>'
        f'<text x="{width - right}" y="{top_pad + plot_h + 16}" text-anchor="end" fill="#64748b" {_FONT}>'
        f"{last:%Y-%m-%d}</text>"
    )
    for index, line in enumerate(series):
        ordered = sorted(line.points)
        coordinates = [xy(moment, value) for moment, value in ordered]
        if len(coordinates) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{line.color}" stroke-width="2"/>')
        for (moment, value), (x, y) in zip(ordered, coordinates, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{line.color}">'
                f"<title>{escape(line.name)} {moment:%Y-%m-%d %H:%M}: {value:g}</title></circle>"
            )
        legend_x = left + index * 200
        parts.append(
            f'<rect x="{legend_x}" y="{height - 18}" width="12" height="12" fill="{line.color}"/>'
            f'<text x="{legend_x + 18}" y="{height - 8}" fill="#334155" {_FONT}>{escape(line.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
