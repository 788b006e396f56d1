"""The send window: weekday hours in Brasília time, Saturday's shorter day, no Sunday, blocked dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contact_center.campaigns.windows import ALWAYS, parse_window, waiting_reason
from contact_center.errors import InvalidInput
from contact_center.translations import dump, say_stored


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026 in Brasília (UTC-3): the 4th is a Friday."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) + timedelta(hours=3)


@pytest.mark.parametrize(("when", "open_"), [
    (at(4, 7, 59), False), (at(4, 8), True), (at(4, 19, 59), True), (at(4, 20), False),
    (at(5, 13, 59), True), (at(5, 14), False), (at(6, 10), False), (at(7, 8), True),
])
def test_the_default_window_is_weekdays_8_to_20_and_saturday_8_to_14(when, open_):
    assert parse_window(None).is_open(when) is open_


def test_closed_on_sunday_it_says_when_it_goes_on_in_each_language():
    reason = waiting_reason(parse_window(None), at(6, 10))
    assert reason.text("pt-BR") == str(reason) == "fora da janela de envio: retoma segunda 07/12 às 08:00"
    assert reason.text("en") == "outside the send window: resumes Monday 07/12 at 08:00"
    assert say_stored(dump(reason), "en") == reason.text("en")  # as a campaign keeps it
    assert say_stored("texto de antes", "en") == "texto de antes"  # a reason kept as plain text reads as it is
    assert waiting_reason(parse_window(None), at(7, 9)) is None


def test_a_blocked_date_is_skipped():
    window = parse_window({"blocked_dates": ["2026-12-07"]})
    assert not window.is_open(at(7, 9))
    assert window.next_open(at(6, 10)) == at(8, 8)


def test_always_is_open_to_the_last_minute_of_every_day():
    window = parse_window(ALWAYS)
    assert window.is_open(at(6, 3)) and window.is_open(at(6, 23, 59))


def test_a_window_that_never_opens_says_so():
    assert "não abre mais" in str(waiting_reason(parse_window({"days": {}}), at(4, 9)))


@pytest.mark.parametrize(("value", "field", "words"), [
    ({"timezone": "Brasil/Norte"}, "send_window.timezone", "unknown time zone"),
    ({"days": {"seg": {"start": "08:00", "end": "20:00"}}}, "send_window.days", "unknown day 'seg'"),
    ({"days": {"mon": {"start": "8h", "end": "20:00"}}}, "send_window.days.mon.start", "pattern"),
    ({"blocked_dates": ["25/12/2026"]}, "send_window.blocked_dates.0", "date"),
])
def test_a_bad_window_is_refused_naming_the_field(value, field, words):
    with pytest.raises(InvalidInput) as refused:
        parse_window(value)
    assert refused.value.field == field and words in refused.value.message
