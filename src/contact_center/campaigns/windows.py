"""When a campaign may send: weekday hours in a time zone, minus blocked dates.

The default is what Brazilian collections run by: Monday to Friday 08:00–20:00 and Saturday
08:00–14:00, Brasília time; Sundays and blocked dates (holidays) nothing. Outside its window a
running campaign releases nothing and says when it will go on.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contact_center.translations import Words
from contact_center.translations.validation import Problem
from contact_center.errors import InvalidInput, InvalidValue

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_KEYS = tuple(f"day.{day}" for day in DAYS)  # each day's name in the catalogs, by weekday()
_HHMM = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"  # 24:00: to the end of the day


class DayHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=_HHMM)
    end: str = Field(pattern=_HHMM)

    @model_validator(mode="after")
    def _ordered(self) -> DayHours:
        if self.end <= self.start:
            raise InvalidValue("ends ({end}) before it starts ({start})", end=self.end, start=self.start)
        return self


class SendWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "America/Sao_Paulo"
    # Each weekday's hours; a day left out sends nothing.
    days: dict[str, DayHours] = Field(default_factory=lambda: {
        **{day: DayHours(start="08:00", end="20:00") for day in DAYS[:5]},
        "sat": DayHours(start="08:00", end="14:00")})
    blocked_dates: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidValue("unknown time zone '{value}'; e.g. America/Sao_Paulo", value=value) from None
        return value

    @field_validator("days", mode="before")
    @classmethod
    def _known_days(cls, value):
        unknown = sorted(set(value) - set(DAYS)) if isinstance(value, dict) else []
        if unknown:
            raise InvalidValue("unknown day '{day}'; the days are {days}", day=unknown[0], days=", ".join(DAYS))
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        hours = self._hours(local.date())
        return hours is not None and hours[0] <= local.time() < hours[1]

    def next_open(self, at: datetime) -> datetime | None:
        """When the window next opens at or after `at` (itself if open); None if it never does."""
        local = at.astimezone(self.zone)
        for offset in range(0, 370):
            day = local.date() + timedelta(days=offset)
            hours = self._hours(day)
            if hours is None:
                continue
            opens = datetime.combine(day, hours[0], self.zone)
            closes = datetime.combine(day, hours[1], self.zone)
            if local < closes:
                return max(opens, local)
        return None

    def _hours(self, day: date) -> tuple[time, time] | None:
        if day in self.blocked_dates:
            return None
        hours = self.days.get(DAYS[day.weekday()])
        return None if hours is None else (_time(hours.start), _time(hours.end))


def _time(hhmm: str) -> time:
    return time.max if hhmm == "24:00" else time.fromisoformat(hhmm)


# Any day, any hour: what a send started by hand from `sms bulk` means.
ALWAYS = {"days": {day: {"start": "00:00", "end": "24:00"} for day in DAYS}}


def parse_window(value: dict | None, field: str = "send_window") -> SendWindow:
    """The window as given (None: the default), or InvalidInput naming what is wrong."""
    try:
        return SendWindow.model_validate(value or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in (field, *error["loc"]))
        raise InvalidInput("{where}: {problem}", field=where, where=where, problem=Problem(error)) from None


def waiting_reason(window: SendWindow, at: datetime) -> Words | None:
    """Why nothing goes now ("fora da janela de envio: retoma segunda 07/12 às 08:00"), None inside it."""
    if window.is_open(at):
        return None
    opens = window.next_open(at)
    if opens is None:
        return Words("fora da janela de envio: ela não abre mais (verifique os dias e as datas bloqueadas)")
    local = opens.astimezone(window.zone)
    return Words("fora da janela de envio: retoma {day} {date} às {time}", day=Words(DAY_KEYS[local.weekday()]),
                 date=f"{local:%d/%m}", time=f"{local:%H:%M}")
