"""Kolmeya callback parsing: one test per payload in tests/fixtures/kolmeya/.

A fixture holds the request body either as `body` (the exact text, used for payloads copied from
the seed's curl commands) or as `payload` (JSON), plus `expect` (the parsed result) or `error`
(the field a WebhookPayloadError must name and a phrase its message must contain).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contact_center.providers.kolmeya.webhooks import (
    BRAZIL_TZ,
    WebhookPayloadError,
    parse_kolmeya_datetime,
    parse_reply,
    parse_statuses,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kolmeya"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def load(path: Path) -> tuple[dict[str, Any], Any]:
    fixture = json.loads(path.read_text(encoding="utf-8"))
    payload = json.loads(fixture["body"]) if "body" in fixture else fixture["payload"]
    return fixture, payload


def parse(kind: str, payload: Any) -> Any:
    if kind == "reply":
        return as_plain(parse_reply(payload))
    return [as_plain(status) for status in parse_statuses(payload)]


def as_plain(parsed: Any) -> dict[str, Any]:
    # Fields only other providers fill (WhatsApp's content, identifiers) left at their defaults
    # are not part of a Kolmeya fixture's expectation.
    defaults = {f.name: f.default for f in fields(parsed) if f.default is not MISSING}
    values = {key: value for key, value in asdict(parsed).items()
              if key not in defaults or key in KOLMEYA_FIELDS or value != defaults[key]}
    if isinstance(values.get("received_at"), datetime):
        values["received_at"] = values["received_at"].isoformat()
    return values


KOLMEYA_FIELDS = {"external_id", "phone", "text", "received_at", "in_reply_to_reference", "in_reply_to_provider_id",
                  "provider_message_id", "reference", "state", "code"}


def test_fixture_directory_is_not_empty() -> None:
    assert len(FIXTURE_FILES) >= 20


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture(path: Path) -> None:
    fixture, payload = load(path)
    if "error" in fixture:
        with pytest.raises(WebhookPayloadError) as caught:
            parse(fixture["kind"], payload)
        assert caught.value.field == fixture["error"]["field"]
        assert fixture["error"]["contains"] in str(caught.value)
    else:
        assert parse(fixture["kind"], payload) == fixture["expect"]
        # A replayed callback must parse to the same external id (it is how duplicates are dropped).
        assert parse(fixture["kind"], json.loads(json.dumps(payload))) == fixture["expect"]


def test_seed_payloads_are_byte_exact() -> None:
    fixture, _ = load(FIXTURES / "reply_seed_minimal.json")
    assert fixture["body"] == '{"phone":"5548991910234","message":"teste","data":"2025-11-15 10:00:00"}'
    fixture, _ = load(FIXTURES / "status_seed_flat_example.json")
    assert fixture["body"] == (
        '{"id": "msg_uuid_67890", "reference": "msg_001", "status": "entregue", '
        '"status_code": 3, "phone": "5548991910234"}'
    )


def test_derived_reply_id_changes_with_the_content() -> None:
    base = {"phone": "5511900000001", "message": "Sim", "reference": "r1", "data": "2025-11-15 10:00:00"}
    ids = {
        parse_reply(base).external_id,
        parse_reply({**base, "message": "Não"}).external_id,
        parse_reply({**base, "data": "2025-11-15 10:00:01"}).external_id,
        parse_reply({**base, "reference": "r2"}).external_id,
        parse_reply({**base, "phone": "5511900000002"}).external_id,
    }
    assert len(ids) == 5


def test_successive_statuses_of_one_message_are_distinct_events() -> None:
    sent = parse_statuses({"id": "m-1", "status_code": 2})[0]
    delivered = parse_statuses({"id": "m-1", "status_code": 3})[0]
    assert sent.external_id != delivered.external_id
    assert (sent.final, delivered.final) == (False, True)


def test_unreadable_date_keeps_the_reply(caplog: pytest.LogCaptureFixture) -> None:
    reply = parse_reply({"phone": "5511900000001", "message": "Oi", "data": "ontem à noite"})
    assert reply.received_at is None
    assert "not a date we can read" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-15 14:30:00", datetime(2025, 11, 15, 17, 30, tzinfo=timezone.utc)),
        ("15/11/2025 14:30:00", datetime(2025, 11, 15, 17, 30, tzinfo=timezone.utc)),
        # Before 2019 Brazil had daylight saving: January 2018 was UTC-2 in São Paulo.
        pytest.param(
            "2018-01-10 12:00:00",
            datetime(2018, 1, 10, 14, 0, tzinfo=timezone.utc),
            marks=pytest.mark.skipif(
                not isinstance(BRAZIL_TZ, ZoneInfo), reason="no tz database: fixed UTC-3 in use"
            ),
        ),
    ],
)
def test_dates_are_brazil_local_time(text: str, expected: datetime) -> None:
    assert parse_kolmeya_datetime(text) == expected


@pytest.mark.parametrize("text", ["2025-13-45 10:00:00", "2025-11-15 1a:30:00", "2025-11-15T14:30:00",
                                  "2025-11-15 14:30", "15/11/25 14:30:00", "amanhã"])
def test_dates_in_no_known_shape_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected 'YYYY-MM-DD HH:MM:SS'"):
        parse_kolmeya_datetime(text)
