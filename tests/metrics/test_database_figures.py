"""The scrape's count of messages in flight reads the partial index alone, on both databases: the
query must state the index's own condition, or SQLite would read every message instead."""

from __future__ import annotations

from sqlalchemy import text

from contact_center.metrics.database import in_flight_by_channel


def test_in_flight_messages_are_counted_from_their_index(db_connection):
    query = in_flight_by_channel(db_connection.dialect.name)
    if db_connection.dialect.name == "sqlite":
        plan = " ".join(str(row[-1]) for row in db_connection.execute(text(f"EXPLAIN QUERY PLAN {query}")))
        assert "COVERING INDEX ix_messages_waiting" in plan, plan
    else:
        db_connection.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table: make the planner choose
        plan = " ".join(row[0] for row in db_connection.execute(text(f"EXPLAIN {query}")))
        assert "ix_messages_waiting" in plan, plan
