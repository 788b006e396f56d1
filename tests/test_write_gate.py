"""SQLite's write lock goes to interactive work before background jobs of the same process."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import text

from contact_center.db import WriteGate, background_writes, make_engine


def _writer(engine, name: str, order: list[str], hold: float, background: bool) -> threading.Thread:
    def run() -> None:
        def write() -> None:
            with engine.begin() as connection:  # BEGIN IMMEDIATE: the write lock from here
                order.append(name)
                connection.execute(text("INSERT INTO log (who) VALUES (:who)"), {"who": name})
                time.sleep(hold)
        if background:
            with background_writes():
                write()
        else:
            write()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _hold_lock(path):
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer, as far as we know
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_background_job_lets_a_waiting_interactive_writer_go_first(tmp_path):
    path = tmp_path / "cc.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE log (id INTEGER PRIMARY KEY, who TEXT)"))
    try:
        for _round in range(3):
            order: list[str] = []
            other = _hold_lock(path)
            # The operator has waited long enough to be in SQLite's 100 ms retries; the job, just
            # arrived, would retry within a millisecond or two and win the lock if nobody ordered them.
            operator = _writer(engine, "operator", order, hold=0.05, background=False)
            time.sleep(0.5)
            job = _writer(engine, "campaign", order, hold=0.0, background=True)
            time.sleep(0.02)
            other.commit()
            operator.join(timeout=15)
            job.join(timeout=15)
            other.close()
            assert order == ["operator", "campaign"]
    finally:
        engine.dispose()


def test_without_an_interactive_writer_waiting_a_job_begins_at_once(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'cc.db'}")
    try:
        started = time.perf_counter()
        with background_writes(), engine.begin() as connection:
            connection.execute(text("SELECT 1"))
        assert time.perf_counter() - started < WriteGate.MAX_YIELD_SECONDS / 2
    finally:
        engine.dispose()


def test_a_stream_of_interactive_writers_cannot_starve_a_job(monkeypatch):
    monkeypatch.setattr(WriteGate, "MAX_YIELD_SECONDS", 0.3)
    gate = WriteGate()
    waited: list[float] = []

    def job() -> None:
        started = time.perf_counter()
        gate.yield_to_interactive()
        waited.append(time.perf_counter() - started)
    with gate.interactive():  # an operator stuck behind another process's long transaction
        thread = threading.Thread(target=job, daemon=True)
        thread.start()
        thread.join(timeout=5)  # an unbounded yield fails here instead of hanging the suite
    assert waited and 0.25 <= waited[0] < 2, f"the job waited {waited or 'more than 5 s'}"


def test_a_job_goes_on_as_soon_as_the_interactive_writer_has_the_lock():
    gate = WriteGate()
    entered, leave = threading.Event(), threading.Event()

    def operator() -> None:
        with gate.interactive():
            entered.set()
            leave.wait(5)
    thread = threading.Thread(target=operator)
    thread.start()
    entered.wait(5)
    threading.Timer(0.2, leave.set).start()
    started = time.perf_counter()
    gate.yield_to_interactive()
    waited = time.perf_counter() - started
    thread.join()
    assert 0.15 <= waited < WriteGate.MAX_YIELD_SECONDS
