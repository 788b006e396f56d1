"""Migrations 0006 and on: the head builds exactly the tables the models describe, on SQLite and
PostgreSQL, and each goes back down cleanly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import contact_center.models
from contact_center.migrations import current_revision, downgrade, upgrade
from tests.conftest import BACKENDS, _postgres_engine, _sqlite_engine


@pytest.fixture(params=BACKENDS)
def empty_engine(request, tmp_path_factory):
    source = _sqlite_engine(tmp_path_factory) if request.param == "sqlite" else _postgres_engine()
    yield next(source)
    next(source, None)


def differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, contact_center.models.Base.metadata)


def test_0006_matches_the_models_and_downgrades(empty_engine):
    upgrade(empty_engine, "0006")
    assert current_revision(empty_engine) == "0006"
    upgrade(empty_engine)
    assert differences(empty_engine) == []

    downgrade(empty_engine, "0005")
    assert not {"ui_sessions", "login_failures"} & set(inspect(empty_engine).get_table_names())
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0007_renames_the_kolmeya_sandbox_provider_and_its_event_sources(empty_engine):
    upgrade(empty_engine, "0006")
    with empty_engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO channels (name, kind, provider, credentials, settings, webhook_secret, active, created_at, "
            "updated_at) VALUES ('SMS', 'sms', 'sandbox', '{}', '{}', 's1', true, '2026-12-01', '2026-12-01'), "
            "('Real', 'sms', 'kolmeya', '{}', '{}', 's2', true, '2026-12-01', '2026-12-01')"))
        connection.execute(text(
            "INSERT INTO webhook_events (source, external_id, payload, outcome, received_at) VALUES "
            "('sandbox.reply', 'r1', '{}', 'applied', '2026-12-01'), ('sandbox.status', 's1', '{}', 'applied', '2026-12-01'), "
            "('kolmeya.reply', 'r2', '{}', 'applied', '2026-12-01')"))
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        assert sorted(connection.execute(text("SELECT provider FROM channels")).scalars()) == [
            "kolmeya", "kolmeya_sandbox"]
        assert sorted(connection.execute(text("SELECT source FROM webhook_events")).scalars()) == [
            "kolmeya.reply", "kolmeya_sandbox.reply", "kolmeya_sandbox.status"]
    downgrade(empty_engine, "0006")
    with empty_engine.connect() as connection:
        assert sorted(connection.execute(text("SELECT source FROM webhook_events")).scalars()) == [
            "kolmeya.reply", "sandbox.reply", "sandbox.status"]


def test_0008_goes_down_and_up_again(empty_engine):
    upgrade(empty_engine, "0008")
    assert current_revision(empty_engine) == "0008"
    downgrade(empty_engine, "0007")
    assert not {"contact_identifiers", "whatsapp_templates"} & set(inspect(empty_engine).get_table_names())
    assert "content_type" not in {column["name"] for column in inspect(empty_engine).get_columns("messages")}
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0009_adds_the_reminded_window_and_goes_down_and_up_again(empty_engine):
    upgrade(empty_engine, "0009")
    assert current_revision(empty_engine) == "0009"
    downgrade(empty_engine, "0008")
    assert "reminded_window_at" not in {column["name"] for column in inspect(empty_engine).get_columns("conversations")}
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def partial_indexes(engine) -> dict[str, bool]:
    """Whether each match index of webhook_events holds only the pending statuses."""
    names = ("ix_webhook_events_match_reference", "ix_webhook_events_match_provider_id")
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = dict(connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all())
        else:
            # This database's schema only: other tests' schemas hold indexes of the same names.
            sql = dict(connection.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                               "WHERE schemaname = current_schema()")).all())
    return {name: "pending" in sql[name] for name in names}


def test_0011_indexes_only_pending_statuses_by_what_they_name(empty_engine):
    upgrade(empty_engine, "0011")
    assert current_revision(empty_engine) == "0011"
    assert set(partial_indexes(empty_engine).values()) == {True}
    downgrade(empty_engine, "0010")
    assert set(partial_indexes(empty_engine).values()) == {False}
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0010_gives_campaigns_their_lifecycle_and_goes_down_and_up_again(empty_engine):
    upgrade(empty_engine, "0010")
    assert current_revision(empty_engine) == "0010"
    columns = {column["name"] for column in inspect(empty_engine).get_columns("campaigns")}
    assert {"audience", "send_window", "per_minute", "starts_at", "whatsapp_template_id"} <= columns
    downgrade(empty_engine, "0009")
    assert "send_window" not in {column["name"] for column in inspect(empty_engine).get_columns("campaigns")}
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0012_adds_the_attempt_history_and_goes_down_and_up_again(empty_engine):
    upgrade(empty_engine, "0012")
    assert current_revision(empty_engine) == "0012"
    downgrade(empty_engine, "0011")
    assert "message_attempts" not in set(inspect(empty_engine).get_table_names())
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0022_keeps_erased_numbers_and_goes_down_and_up_again(empty_engine):
    upgrade(empty_engine, "0022")
    assert current_revision(empty_engine) == "0022"
    downgrade(empty_engine, "0021")
    assert "erased_numbers" not in set(inspect(empty_engine).get_table_names())
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0023_keeps_the_days_operators_wrote_and_goes_down_and_up_again(empty_engine):
    upgrade(empty_engine, "0023")
    assert current_revision(empty_engine) == "0023"
    downgrade(empty_engine, "0022")
    assert "report_handled_days" not in set(inspect(empty_engine).get_table_names())
    assert "ix_messages_report_operator" in {i["name"] for i in inspect(empty_engine).get_indexes("messages")}
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0024_keeps_the_message_days_in_their_primary_key_on_sqlite_and_their_counts_both_ways(empty_engine):
    upgrade(empty_engine, "0023")
    count = ("INSERT INTO report_message_days (day, channel_id, campaign_id, author_id, status, messages) "
             "VALUES ('2026-11-01', 1, 0, 0, 'sent', 7), ('2026-11-02', 1, 3, 2, 'failed', 2)")
    with empty_engine.begin() as connection:
        connection.execute(text(count))

    def stored():
        with empty_engine.connect() as connection:
            rows = connection.execute(text("SELECT day, campaign_id, status, messages FROM report_message_days "
                                           "ORDER BY day")).all()
            ddl = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'report_message_days'")
                                     ).scalar() if empty_engine.dialect.name == "sqlite" else None
        return [tuple(str(v) for v in row) for row in rows], ddl

    upgrade(empty_engine)
    rows, ddl = stored()
    assert rows == [("2026-11-01", "0", "sent", "7"), ("2026-11-02", "3", "failed", "2")]
    if empty_engine.dialect.name == "sqlite":  # PostgreSQL has no rowid: nothing to check there
        assert "WITHOUT ROWID" in ddl
    assert differences(empty_engine) == []
    downgrade(empty_engine, "0023")
    assert stored()[0] == rows
    upgrade(empty_engine)
    assert stored()[0] == rows
    with empty_engine.begin() as connection:  # the triggers of 0018 still write it
        connection.execute(text(
            "INSERT INTO channels (id, name, kind, provider, credentials, settings, webhook_secret, active, "
            "created_at, updated_at) VALUES (1, 'SMS', 'sms', 'kolmeya_sandbox', '{}', '{}', 's', true, "
            "'2026-11-01 12:00:00', '2026-11-01 12:00:00')"))
        connection.execute(text(
            "INSERT INTO conversations (id, channel_id, phone_e164, phone_key, status, unread_count, "
            "last_activity_at, created_at) VALUES (1, 1, '+5511900000001', 'k1', 'new', 0, "
            "'2026-11-01 12:00:00', '2026-11-01 12:00:00')"))
        connection.execute(text(
            "INSERT INTO messages (reference, channel_id, conversation_id, direction, origin, phone, phone_e164, body, content_type, "
            "status, status_inferred, segments, attempts, created_at, updated_at) VALUES ('r1', 1, 1, 'out', 'api', "
            "'+5511900000001', '+5511900000001', 'x', 'text', 'sent', false, 1, 0, '2026-11-01 12:00:00', "
            "'2026-11-01 12:00:00')"))
    assert stored()[0][0] == ("2026-11-01", "0", "sent", "8")


def test_0025_keeps_status_indexes_for_what_waits_and_goes_down_and_up_again(empty_engine):
    upgrade(empty_engine, "0025")
    assert current_revision(empty_engine) == "0025"
    names = {i["name"] for i in inspect(empty_engine).get_indexes("messages")}
    assert "ix_messages_waiting" in names and "ix_messages_status_queued_at" not in names
    downgrade(empty_engine, "0024")
    names = {i["name"] for i in inspect(empty_engine).get_indexes("messages")}
    assert "ix_messages_status_queued_at" in names and "ix_messages_waiting" not in names
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0026_counts_message_days_per_statement_on_postgresql_and_goes_down_and_up_again(empty_engine):
    def triggers():
        if empty_engine.dialect.name != "postgresql":
            return set()
        with empty_engine.connect() as connection:
            return set(connection.execute(text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'messages'::regclass AND NOT tgisinternal")).scalars())

    upgrade(empty_engine, "0026")
    assert current_revision(empty_engine) == "0026"
    if empty_engine.dialect.name == "postgresql":
        assert {"report_messages_inserted", "report_messages_updated", "report_messages_deleted"} <= triggers()
        assert "report_message_status" not in triggers()
    downgrade(empty_engine, "0025")
    if empty_engine.dialect.name == "postgresql":
        assert "report_message_status" in triggers() and "report_messages_updated" not in triggers()
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0027_drops_the_in_flight_index_and_goes_down_and_up_again(empty_engine):
    def names():
        return {i["name"] for i in inspect(empty_engine).get_indexes("messages")}

    upgrade(empty_engine)
    assert current_revision(empty_engine) == "0027"
    assert "ix_messages_in_flight" not in names() and "ix_messages_waiting" in names()
    downgrade(empty_engine, "0026")
    assert "ix_messages_in_flight" in names()
    upgrade(empty_engine)
    assert differences(empty_engine) == []
