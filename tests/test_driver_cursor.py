"""DriverCursor: the plain SQL of webhook batches must store exactly what SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from contact_center.db import DriverCursor
from contact_center.webhooks.models import WebhookEvent

SAO_PAULO = timezone(timedelta(hours=-3))


def test_timestamps_are_stored_as_the_orm_stores_them(db):
    """On SQLite datetimes are text, so another format would sort and compare wrongly against
    rows the ORM wrote; on PostgreSQL both are timestamptz."""
    moments = [datetime(2026, 11, 24, 21, 5, 7, tzinfo=SAO_PAULO), datetime(2026, 11, 25, 0, 5, 7, 250, tzinfo=UTC)]
    for index, moment in enumerate(moments):
        db.add(WebhookEvent(source="test.orm", external_id=str(index), payload="{}", outcome="applied",
                            received_at=moment))
    db.flush()
    driver = DriverCursor(db.connection())
    driver.executemany("INSERT INTO webhook_events (source, external_id, payload, outcome, received_at) "
                       "VALUES (?, ?, '{}', 'applied', ?)",
                       [("test.driver", str(index), driver.timestamp(moment)) for index, moment in enumerate(moments)])

    stored = dict(((source, external_id), received_at) for source, external_id, received_at in driver.rows(
        "SELECT source, external_id, received_at FROM webhook_events WHERE source IN (?, ?)",
        ["test.orm", "test.driver"]))
    for index in range(len(moments)):
        assert stored[("test.driver", str(index))] == stored[("test.orm", str(index))]
    read_back = db.scalars(select(WebhookEvent.received_at).where(WebhookEvent.source == "test.driver")
                           .order_by(WebhookEvent.external_id)).all()
    assert read_back == moments  # the same instants, handed back as aware UTC
    assert all(value.tzinfo == UTC for value in read_back)


def test_placeholders_and_lists_work_on_every_database(db):
    driver = DriverCursor(db.connection())
    driver.executemany("INSERT INTO webhook_events (source, external_id, payload, outcome, received_at) "
                       "VALUES (?, ?, ?, 'applied', ?)",
                       [("test.marks", f"id-{n}", '{"texto": "100% pago?"}', driver.timestamp(datetime.now(UTC)))
                        for n in range(5)])
    wanted = ["id-1", "id-3", "id-9"]
    rows = driver.rows(f"SELECT external_id, payload FROM webhook_events WHERE source = ? AND external_id IN "
                       f"({driver.marks(len(wanted))}) ORDER BY external_id", ["test.marks", *wanted])
    # Values with ? and % travel as parameters, untouched.
    assert rows == [("id-1", '{"texto": "100% pago?"}'), ("id-3", '{"texto": "100% pago?"}')]
