"""Migration 0014 (contacts.odoo_partner_id and odoo_sync_state) matches the models and goes down
and up again, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from contact_center.migrations import downgrade, upgrade
from tests.test_migrations_recent import differences, empty_engine  # noqa: F401 (the fixture)


def test_0014_adds_the_partner_id_and_the_sync_state_and_goes_down_and_up_again(empty_engine):  # noqa: F811
    upgrade(empty_engine)
    assert differences(empty_engine) == []
    downgrade(empty_engine, "0013")
    assert "odoo_sync_state" not in set(inspect(empty_engine).get_table_names())
    assert "odoo_partner_id" not in {c["name"] for c in inspect(empty_engine).get_columns("contacts")}
    upgrade(empty_engine)
    assert differences(empty_engine) == []
