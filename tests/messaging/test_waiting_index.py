"""What waits is found through ix_messages_waiting, which holds only messages not final yet (a
delivered message's later reports then write in no status index): each query that looks for
messages by status states the index's condition, or SQLite would read every message instead.
Read from SQLite's EXPLAIN QUERY PLAN of the statements the code really runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import sessionmaker

from contact_center.channels import service as channels
from contact_center.db import utcnow
from contact_center.messaging import dispatch, reconcile, recovery, report_reconcile
from contact_center.metrics.database import DatabaseCollector


@pytest.fixture
def sqlite_engine(tmp_path_factory):
    from tests.conftest import _migrated

    source = _migrated("sqlite", tmp_path_factory)
    yield next(source)
    next(source, None)


def test_every_search_by_status_reads_the_index_of_what_waits(sqlite_engine, settings):
    factory = sessionmaker(bind=sqlite_engine)
    ran: list[tuple[str, tuple]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "FROM messages" in statement and "status" in statement:
            ran.append((statement, parameters))

    event.listen(sqlite_engine, "before_cursor_execute", keep)
    try:
        with factory() as session:
            dispatch.sweep(session, settings)
            channels.queued_message_ids(session, 1)
            report_reconcile._waiting(session, 1, utcnow() - timedelta(days=7), None)
        reconcile.check_unknown(factory, settings)
        report_reconcile.reconcile_all(factory, settings)
        recovery._check_stuck_statuses(factory, None, 1, recovery.PollReport())
        DatabaseCollector(sqlite_engine, jobs=None)._read_messages()
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", keep)

    assert len(ran) == 10, ran  # each of the searches above
    with sqlite_engine.connect() as connection:
        for statement, parameters in ran:
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters))
            # A partial index's entries are only what waits: reading them is not reading the table.
            assert "ix_messages_waiting" in plan, (statement, plan)


def test_the_index_holds_only_what_is_not_final(sqlite_engine):
    with sqlite_engine.connect() as connection:
        sql = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_messages_waiting'")).scalar()
        campaign = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_messages_campaign_status'")
                                      ).scalar()
    assert "WHERE status IN ('scheduled', 'queued', 'sending', 'unknown', 'sent')" in sql
    assert "WHERE campaign_id IS NOT NULL" in campaign
