"""Charts drawn on the server as SVG (no script needed to see them, nothing fetched): the per-person share of
every period of a plan, the curve that tells a member what staying costs."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 30


@dataclass(frozen=True)
class Point:
    """One bar or point: its label (the period number) and its value in fen."""

    label: str
    fen: int


def _ticks(high: int) -> list[int]:
    """Up to five round values from 0 to at least `high` (fen)."""
    if high <= 0:
        return [0, 100]
    step = 1
    while high / step > 5:
        for factor in (2, 5, 10):
            if high / (step * factor) <= 5:
                step *= factor
                break
        else:
            step *= 10
    return list(range(0, high + step, step))


def share_chart(points: list[Point], title: str, unit: str) -> str:
    """An SVG line chart of the share per period (y in yuan), with its title for assistive technology."""
    if not points:
        return ""
    ticks = _ticks(max(p.fen for p in points))
    top = ticks[-1] or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(points) - 1)

    def x(i: int) -> float:
        return LEFT + (step * i if len(points) > 1 else plot_w / 2)

    def y(fen: int) -> float:
        return TOP + plot_h - plot_h * fen / top

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{escape(title)}</title>']
    for tick in ticks:
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
                     f'<text class="axis" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                     f'{tick / 100:g}</text>')
    parts.append(f'<text class="axis" x="4" y="{TOP + 2}">{escape(unit)}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(p.fen):.1f}" for i, p in enumerate(points))
    parts.append(f'<path class="line" d="{path}"/>')
    every = max(1, len(points) // 12)
    for i, point in enumerate(points):
        parts.append(f'<circle class="dot" cx="{x(i):.1f}" cy="{y(point.fen):.1f}" r="3">'
                     f'<title>{escape(point.label)}: {point.fen / 100:.2f}</title></circle>')
        if i % every == 0 or i == len(points) - 1:
            parts.append(f'<text class="axis" x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
                         f'{escape(point.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
