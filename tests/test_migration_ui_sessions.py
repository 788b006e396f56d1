"""Migration 0006 builds exactly the tables the models describe, on SQLite and PostgreSQL, and
goes back down cleanly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

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
    upgrade(empty_engine)
    assert current_revision(empty_engine) == "0006"
    assert differences(empty_engine) == []

    downgrade(empty_engine, "0005")
    assert not {"ui_sessions", "login_failures"} & set(inspect(empty_engine).get_table_names())
    upgrade(empty_engine)
    assert differences(empty_engine) == []
