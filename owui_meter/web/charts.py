"""Charts as inline SVG made on the server: nothing fetched by the browser, no inline script.

A chart is drawn twice, wide (a desktop) and narrow (a phone); CSS shows one. Each day is a
``<g class="day">`` carrying its figures in data attributes, which ``static/chart.js`` shows on
hover or tap; without script the ``<title>`` of each day says the same.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

from markupsafe import Markup, escape

from ..money import NANO, format_usd

TOP_SERIES = 5  # models drawn in their own colour; the rest are "Other models"
WEEKLY_AFTER_DAYS = 92  # a longer period is drawn a bar per week: 366 one-pixel bars say nothing


def unit(days: list[str]) -> str:
    """'day' or 'week': what one bar of the chart of these days stands for."""
    return "week" if len(days) > WEEKLY_AFTER_DAYS else "day"


def by_week(days: list[str], series: list[tuple[str, list[int]]]) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """The days' values summed per week (from Monday); each week named by its first day in the period."""
    slots: dict[dt.date, int] = {}
    starts = []
    for day in days:
        d = dt.date.fromisoformat(day)
        monday = d - dt.timedelta(days=d.weekday())
        if monday not in slots:
            slots[monday] = len(starts)
            starts.append(day)
    weekly = []
    for name, values in series:
        sums = [0] * len(starts)
        for day, value in zip(days, values):
            d = dt.date.fromisoformat(day)
            sums[slots[d - dt.timedelta(days=d.weekday())]] += value
        weekly.append((name, sums))
    return starts, weekly
OTHERS = "Other models"


def nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 2.5 or 5 × a power of ten, in nano-USD) so ``ticks`` steps cover ``top``."""
    raw = max(top / ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)  # unreachable: 10 × magnitude >= raw always


def tick_label(nano: int, step: int) -> str:
    """Money on an axis: as many decimals as the step needs, no more ($0.25, $1, $1.50)."""
    places = 0
    while places < 6 and (step * 10**places) % NANO:
        places += 1
    return format_usd(nano, places)


@functools.lru_cache(maxsize=4096)  # a chart labels the same few hundred days page after page
def day_label(day: str) -> str:
    d = dt.date.fromisoformat(day)
    return f"{d.day} {d:%b}"


def model_label(model: str, names: dict | None) -> str:
    name = (names or {}).get(model)
    return f"{name} ({model})" if name and name != model else model


def cost_chart(days: list[str], series: list[tuple[str, list[int]]], *, label: str = "Cost per day",
               budget_line: tuple[int, str] | None = None) -> Markup:
    """Stacked bars per day (per week for a long period) with a legend; a dashed line at
    ``budget_line`` (nano-USD a day, caption)."""
    weekly = unit(days) == "week"
    if weekly:
        days, series = by_week(days, series)
        budget_line = (budget_line[0] * 7, budget_line[1] + " × 7") if budget_line else None
    totals = [sum(values[i] for _, values in series) for i in range(len(days))]
    if not days or not any(totals):
        return Markup(f'<p class="empty-chart" role="img" aria-label="{escape(label)}: nothing">No answers in this period.</p>')
    about = []  # per day, the same in both drawings: its <g> attributes and <title>
    for i, day in enumerate(days):
        detail = "|".join(f"{name}: {format_usd(values[i])}" for name, values in series if values[i])
        title = f"{'week of ' if weekly else ''}{day_label(day)}: {format_usd(totals[i])}" + (" · " + detail.replace("|", " · ") if detail else "")
        about.append(f'class="day" data-day="{"week of " if weekly else ""}{escape(day_label(day))}" data-total="{escape(format_usd(totals[i]))}" '
                     f'data-detail="{escape(detail)}"><title>{escape(title)}</title>')
    parts = [_svg(days, series, totals, about, label, budget_line, 720, 200, "wide"),
             _svg(days, series, totals, about, label, budget_line, 360, 220, "narrow"),
             '<ul class="legend">']
    for i, (name, _) in enumerate(series):
        parts.append(f'<li><span class="swatch s{i if name != OTHERS else "x"}"></span>{escape(name)}</li>')
    if budget_line:
        parts.append(f'<li><span class="swatch budget"></span>{escape(budget_line[1])}</li>')
    parts.append('</ul><div class="tip" hidden></div>')
    return Markup("".join(parts))


def _svg(days, series, totals, about, label, budget_line, width, height, kind) -> str:
    top = max(max(totals), budget_line[0] if budget_line else 0)
    step = nice_step(top)
    ceiling = step * math.ceil(top / step)
    left, right, top_pad, bottom = (52, 8, 8, 22) if kind == "wide" else (44, 4, 8, 22)
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    slot = plot_w / len(days)
    bar_w = max(1.0, slot * 0.8)
    parts = [f'<svg class="{kind}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    value = 0
    while value <= ceiling:
        y = top_pad + plot_h * (1 - value / ceiling)
        parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3.5:.1f}" text-anchor="end">{escape(tick_label(value, step))}</text>')
        value += step
    labels = 8 if kind == "wide" else 4
    every = max(1, math.ceil(len(days) / labels))
    for i, day in enumerate(days):
        x = left + i * slot
        parts.append(f'<g {about[i]}<rect class="hit" x="{x:.1f}" y="{top_pad}" width="{slot:.1f}" height="{plot_h}"/>')
        base = top_pad + plot_h
        for s, (name, values) in enumerate(series):
            if values[i]:
                h = plot_h * values[i] / ceiling
                base -= h
                colour = "sx" if name == OTHERS else f"s{s}"
                parts.append(f'<rect class="bar {colour}" x="{x + (slot - bar_w) / 2:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                             f'height="{h:.1f}" data-value="{values[i]}"/>')
        parts.append("</g>")
        if i % every == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(day_label(day))}</text>')
    if budget_line:
        y = top_pad + plot_h * (1 - budget_line[0] / ceiling)
        parts.append(f'<line class="budget" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
    parts.append("</svg>")
    return "".join(parts)
