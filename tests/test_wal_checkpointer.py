"""The background WAL checkpointer of long-running SQLite processes."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from contact_center.db import WalCheckpointer, background_checkpoints, make_engine


def _write_pages(engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, body TEXT)"))
        connection.execute(text("INSERT INTO filler (body) VALUES (:body)"), [{"body": "x" * 500}] * rows)


def test_commits_leave_checkpoints_to_the_background_thread(tmp_path):
    path = tmp_path / "cc.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with background_checkpoints(engine):
            with engine.connect() as connection:  # the process's connections only checkpoint as a safety net
                assert (connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
                        == WalCheckpointer.SAFETY_NET_PAGES)
            _write_pages(engine, 2000)  # ~250 pages: under the safety net, so the commit checkpoints nothing
            deadline = time.monotonic() + 5
            while path.stat().st_size < 500_000 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert path.stat().st_size >= 500_000, "the rows never reached the database file"
    finally:
        engine.dispose()


def test_without_the_thread_commits_keep_sqlite_default(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'cc.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    engine.dispose()


def test_other_databases_get_no_thread():
    def checkpointers() -> int:  # other tests' servers may have theirs running
        return sum(thread.name == "wal-checkpointer" for thread in threading.enumerate())

    engine = make_engine("sqlite://")
    before = checkpointers()
    with background_checkpoints(engine):
        assert checkpointers() == before
    engine.dispose()


def test_only_file_databases_get_one():
    assert WalCheckpointer.wanted(make_engine("sqlite:///var/x.db"))
    assert not WalCheckpointer.wanted(make_engine("sqlite://"))
    assert not WalCheckpointer.wanted(make_engine("postgresql+psycopg://u@127.0.0.1/db"))
