"""A report's figures as a table: typed columns, so the page, the CSV and the JSON API show the
same numbers, each formatted for where it goes."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

from contact_center.translations import say_stored


@dataclass(frozen=True)
class Column:
    key: str  # the heading's key in the catalogs ("reports.col.<key>")
    # text | label (a word of ours, "reports.label.<value>") | reason (a message's, as stored:
    # translations.store) | day | int | rate (0–1; None when nothing to count) | seconds (None: none measured)
    kind: str = "int"
    empty: str | None = None  # what None means in this column ("reports.label.<empty>"), else —


@dataclass
class Section:
    """One chart and the table beside it. `chart`: "stacked" (one bar per row, a segment per
    series column), "grouped" (bars side by side per row) or "bars" (one horizontal bar per row)."""

    key: str  # names its title, help text and CSV file (reports.section.<key>)
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    chart: str | None = None
    labels: tuple[int, ...] = (0,)  # the columns a bar's label is made of
    series: tuple[int, ...] = ()  # the columns drawn

    def as_dicts(self, lang: str | None) -> list[dict]:
        return [{c.key: _plain(v, c, lang) for c, v in zip(self.columns, row)} for row in self.rows]


def _plain(value, column: Column, lang: str | None):
    if column.kind == "reason":
        return say_stored(value, lang)
    return value.isoformat() if isinstance(value, date) else value


def number(value: int | float, lang: str) -> str:
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "pt-BR" else text


def duration(seconds: float | None, lang: str) -> str:
    """2 h 05 min, 14 min 30 s, 45 s; — when nothing was measured."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def cell(value, column: Column, lang: str, t) -> str:
    """A value as the page's table shows it."""
    kind = column.kind
    if value is None:
        return t(f"reports.label.{column.empty}") if column.empty else "—"
    if kind == "label":
        return t(f"reports.label.{value}")
    if kind == "reason":
        return say_stored(value, lang)
    if kind == "day":
        return value.strftime("%d/%m/%Y" if lang == "pt-BR" else "%Y-%m-%d")
    if kind == "int":
        return number(value, lang)
    if kind == "rate":
        text = f"{value * 100:.1f}".removesuffix(".0")
        return (text.replace(".", ",") if lang == "pt-BR" else text) + "%"
    if kind == "seconds":
        return duration(value, lang)
    return str(value)


def csv_text(section: Section, t) -> str:
    """The table as CSV: headings in the reader's language, values machine-readable (ISO days,
    whole counts, rates from 0 to 1, durations in seconds), so a spreadsheet can sum them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([t(f"reports.col.{c.key}") + (t("reports.csv.seconds") if c.kind == "seconds" else "")
                     for c in section.columns])
    for row in section.rows:
        writer.writerow([_csv_value(v, c, t) for c, v in zip(section.columns, row)])
    return out.getvalue()


def _csv_value(value, column: Column, t):
    kind = column.kind
    if value is None:
        return t(f"reports.label.{column.empty}") if column.empty else ""
    if kind == "label":
        return t(f"reports.label.{value}")
    if kind == "reason":
        return t.say(value)
    if kind == "day":
        return value.isoformat()
    if kind == "rate":
        return f"{value:.4f}"
    if kind == "seconds":
        return f"{value:.0f}"
    return value
