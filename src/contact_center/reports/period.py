"""What a report covers: a range of Brasília days and the optional channel, campaign and operator
filters, read from a query string with errors an operator can act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("America/Sao_Paulo")  # days are Brasília days; timestamps are stored in UTC
DEFAULT_DAYS = 30
MAX_DAYS = 366  # a report's budget: one request never reads more than a year of messages
MAX_ID = 2_147_483_647


class ReportInputError(Exception):
    """A filter that cannot be read: `key` names the sentence in the catalogs (translations/), `field` the input."""

    def __init__(self, key: str, field: str, **params):
        super().__init__(f"{key} ({field})")
        self.key, self.field, self.params = key, field, params


@dataclass(frozen=True)
class Filters:
    start: date  # first Brasília day, included
    end: date  # last Brasília day, included
    channel_id: int | None = None
    campaign_id: int | None = None
    operator_id: int | None = None

    @property
    def since(self) -> datetime:
        """The first instant of the first day, in UTC."""
        return datetime.combine(self.start, time(), ZONE).astimezone(UTC)

    @property
    def until(self) -> datetime:
        """The first instant after the last day, in UTC."""
        return datetime.combine(self.end + timedelta(days=1), time(), ZONE).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def query(self) -> dict[str, str]:
        """The filters as the page's query string holds them (links, the CSV download)."""
        values = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        for name in ("channel_id", "campaign_id", "operator_id"):
            if getattr(self, name) is not None:
                values[name.removesuffix("_id")] = str(getattr(self, name))
        return values


def today() -> date:
    return datetime.now(ZONE).date()


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


def _day(values: Mapping[str, str], field: str, default: date) -> date:
    raw = (values.get(field) or "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ReportInputError("reports.error.date", field, value=_shown(raw)) from None


def _id(values: Mapping[str, str], field: str) -> int | None:
    raw = (values.get(field) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise ReportInputError("reports.error.id", field, value=_shown(raw))
    return int(raw)


def parse_filters(values: Mapping[str, str], *, now: date | None = None) -> Filters:
    """Filters from a query string: `start`, `end` (YYYY-MM-DD, Brasília days; the last 30 days,
    today included, by default), `channel`, `campaign`, `operator` (ids; empty for all)."""
    current = now or today()
    end = _day(values, "end", current)
    start = _day(values, "start", end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise ReportInputError("reports.error.order", "start", start=start.isoformat(), end=end.isoformat())
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportInputError("reports.error.too_long", "start", days=MAX_DAYS)
    return Filters(start=start, end=end, channel_id=_id(values, "channel"), campaign_id=_id(values, "campaign"),
                   operator_id=_id(values, "operator"))
