"""Charts as inline SVG made on the server: no script, no CDN, nothing fetched by the browser."""

from __future__ import annotations

from markupsafe import Markup, escape

from ..money import format_usd


def bar_chart(points: list[tuple[str, int]], *, width: int = 720, height: int = 180, label: str = "Cost per day") -> Markup:
    """Bars of nano-USD values over labelled slots (days); a title per bar shows the figure."""
    if not points:
        return Markup(f'<svg viewBox="0 0 {width} 40" role="img" aria-label="{escape(label)}: no data"><text x="8" y="24">No answers in this period.</text></svg>')
    top = max(v for _, v in points) or 1
    left, bottom, right = 56, 22, 8
    plot_w, plot_h = width - left - right, height - bottom - 8
    step = plot_w / len(points)
    bar_w = max(1.0, step * 0.8)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    for fraction in (0, 0.5, 1):
        y = 8 + plot_h * (1 - fraction)
        parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{escape(format_usd(int(top * fraction), 2))}</text>')
    every = max(1, len(points) // 8)
    for i, (name, value) in enumerate(points):
        h = plot_h * value / top
        x = left + i * step + (step - bar_w) / 2
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{8 + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" data-value="{value}">'
            f"<title>{escape(name)}: {escape(format_usd(value))}</title></rect>"
        )
        if i % every == 0:
            parts.append(f'<text x="{left + i * step + step / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(name[5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
