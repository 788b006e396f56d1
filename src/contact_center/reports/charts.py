"""Charts as SVG drawn here, on the server: no script, no CDN, the same in every language.

Each chart draws one report table (reports/tables.py): a bar per row, a segment (stacked) or a
bar side by side (grouped) per series column, or one horizontal bar per row (bars). Every bar
carries a <title> the browser shows as a tooltip and screen readers read; the <svg> itself has a
title and a one-sentence description, and the table beside it holds every figure.
"""

from __future__ import annotations

import math
from itertools import count

from markupsafe import Markup, escape

from contact_center.reports.tables import Section, cell

# Colour-blind-safe (Okabe–Ito), in the order series come.
PALETTE = ("#0072B2", "#009E73", "#56B4E9", "#E69F00", "#D55E00", "#CC79A7", "#999999", "#F0E442")
# States and reasons that mean trouble get the warm colours whatever their position.
NAMED = {"state_read": "#0072B2", "state_delivered": "#009E73", "state_sent": "#56B4E9",
         "state_pending": "#999999", "state_failed": "#D55E00", "state_blocked": "#E69F00",
         "state_cancelled": "#CC79A7"}
WIDTH, HEIGHT = 960, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 56
_ids = count(1)


def nice_ceiling(value: float) -> tuple[float, float]:
    """The axis top and its step: 1, 2 or 5 times a power of ten, about five ticks."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return step * math.ceil(value / step), step


def draw(section: Section, t, lang: str) -> Markup:
    if section.chart in ("stacked", "grouped"):
        return _columns(section, t, lang, stacked=section.chart == "stacked")
    if section.chart == "bars":
        return _bars(section, t, lang)
    return Markup("")


def _label(section: Section, row: list, t, lang: str) -> str:
    return " · ".join(cell(row[i], section.columns[i], lang, t) for i in section.labels)


def _open(section: Section, t, summary: str, height: int) -> tuple[list[str], str]:
    chart_id = f"chart-{section.key}-{next(_ids)}"
    title = t(f"reports.section.{section.key}")
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
             f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg" '
             f'font-family="system-ui, sans-serif" font-size="12">',
             f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(summary)}</desc>']
    return parts, chart_id


def _legend(section: Section, t, parts: list[str]) -> None:
    x = LEFT
    for n, column_index in enumerate(section.series):
        column = section.columns[column_index]
        name = t(f"reports.col.{column.key}")
        parts.append(f'<g class="legend-item"><rect x="{x}" y="10" width="12" height="12" '
                     f'fill="{_colour(column.key, n)}"/><text x="{x + 16}" y="20">{escape(name)}</text></g>')
        x += 28 + 7 * len(name)


def _colour(key: str, n: int) -> str:
    return NAMED.get(key, PALETTE[n % len(PALETTE)])


def _columns(section: Section, t, lang: str, *, stacked: bool) -> Markup:
    rows = section.rows
    totals = [sum(row[i] for i in section.series) for row in rows]
    peak = max((totals if stacked else [max((row[i] for i in section.series), default=0) for row in rows]),
               default=0)
    summary = t("reports.chart.summary", bars=len(rows), total=cell(sum(totals), section.columns[section.series[0]],
                                                                       lang, t))
    parts, _ = _open(section, t, summary, HEIGHT)
    _legend(section, t, parts)
    top, step = nice_ceiling(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    tick = 0.0
    while tick <= top + 1e-9:  # the value axis, with its grid
        y = base - plot_h * tick / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e6ea"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
                     f'{escape(cell(int(tick), section.columns[section.series[0]], lang, t))}</text>')
        tick += step
    slot = plot_w / max(1, len(rows))
    every = max(1, math.ceil(len(rows) / 16))  # labels that never overlap
    for n, row in enumerate(rows):
        label = _label(section, row, t, lang)
        x = LEFT + n * slot + slot * 0.15
        width = slot * 0.7
        y = base
        for s, column_index in enumerate(section.series):
            value = row[column_index] or 0
            column = section.columns[column_index]
            h = plot_h * value / top
            tip = f"{label} — {t(f'reports.col.{column.key}')}: {cell(value, column, lang, t)}"
            if stacked:
                y -= h
                bar_x, bar_w, bar_y = x, width, y
            else:
                bar_w = width / len(section.series)
                bar_x, bar_y = x + s * bar_w, base - h
            if value:
                parts.append(f'<rect x="{bar_x:.1f}" y="{bar_y:.1f}" width="{max(bar_w, 1):.1f}" '
                             f'height="{max(h, 0.5):.1f}" fill="{_colour(column.key, s)}">'
                             f'<title>{escape(tip)}</title></rect>')
        if n % every == 0:
            short = cell(row[section.labels[0]], section.columns[section.labels[0]], lang, t)
            short = short[:5] if section.columns[section.labels[0]].kind == "day" else short[:14]
            parts.append(f'<text x="{x + width / 2:.1f}" y="{base + 16}" text-anchor="middle" fill="#555">'
                         f'{escape(short)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" stroke="#888"/></svg>')
    return Markup("".join(parts))


def _bars(section: Section, t, lang: str) -> Markup:
    value_index = section.series[0]
    column = section.columns[value_index]
    rows = section.rows
    row_h = 26
    height = TOP + row_h * max(1, len(rows)) + 8
    values = [row[value_index] for row in rows]
    top = 1.0 if column.kind == "rate" else (nice_ceiling(max((v or 0 for v in values), default=0))[0])
    summary = t("reports.chart.bars_summary", bars=len(rows), measure=t(f"reports.col.{column.key}"))
    parts, _ = _open(section, t, summary, height)
    label_w = 260
    plot_w = WIDTH - label_w - RIGHT - 90
    parts.append(f'<text x="{label_w}" y="24" fill="#555">{escape(t(f"reports.col.{column.key}"))}</text>')
    for n, row in enumerate(rows):
        y = TOP + n * row_h
        label = _label(section, row, t, lang)
        value = row[value_index]
        shown = cell(value, column, lang, t)
        width = plot_w * (value or 0) / top if top else 0
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label[:40])}</text>'
                     f'<rect x="{label_w}" y="{y + 4}" width="{plot_w}" height="16" fill="#f1f3f5"/>'
                     f'<rect x="{label_w}" y="{y + 4}" width="{max(width, 0):.1f}" height="16" '
                     f'fill="{_colour(column.key, 0)}"><title>{escape(f"{label}: {shown}")}</title></rect>'
                     f'<text x="{label_w + plot_w + 8}" y="{y + 16}">{escape(shown)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
