"""Engine, sessions and the declarative base shared by every domain area.

Services only flush; the edge (a request, a CLI command, a job) owns the transaction and commits.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field
from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import BindParameter, ColumnElement, bindparam
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import NullType, TypeDecorator

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Keys are INTEGER columns: 32-bit on PostgreSQL, which refuses a larger value instead of finding
# nothing. Ids that come from outside are checked against it (Id in the API's schemas, the
# path and query of every route in routes.py).
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="An id of ours.")]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores UTC and always hands back an aware datetime, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect):
        # Bulk sends bind the same `now` in several columns of every row; converting it once per
        # chunk instead of once per value is a noticeable share of their Python time on SQLite.
        process = super().bind_processor(dialect)
        last: tuple = (None, None)

        def remembered(value):
            nonlocal last
            seen = last  # one read: other threads may replace it meanwhile
            if value is not None and value is seen[0]:
                return seen[1]
            converted = process(value)
            last = (value, converted)
            return converted

        return remembered


IN_CHUNK = 500  # values per IN (...) list: well under every driver's parameter limit


def chunks(values: list, size: int = IN_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class ContainsText(ColumnElement):
    """`column` contains `text` (`%` and `_` taken as written), ignoring ASCII case: ILIKE on
    PostgreSQL, plain LIKE on SQLite, whose LIKE already ignores ASCII case (SQLAlchemy's ilike
    wraps both sides in lower(), which doubled the cost of a name search's scan of the contacts)."""

    type = NullType()  # a condition as written: typed Boolean, SQLite would be given "… = 1" to compare
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("pattern", InternalTraversal.dp_clauseelement)]

    def __init__(self, column, text: str) -> None:
        escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
        self.column = column
        self.pattern: BindParameter = bindparam(None, f"%{escaped}%", unique=True)


def _contains_as(operator: str):
    def compile_contains(element: ContainsText, compiler, **kw) -> str:
        column, pattern = compiler.process(element.column, **kw), compiler.process(element.pattern, **kw)
        return f"{column} {operator} {pattern} ESCAPE '/'"
    return compile_contains


compiles(ContainsText)(_contains_as("ILIKE"))
compiles(ContainsText, "sqlite")(_contains_as("LIKE"))


class DriverCursor:
    """Plain SQL on the DBAPI cursor of a Connection's transaction, for the set-based statements a
    webhook batch runs many times a second. There SQLAlchemy's work per statement (compiling,
    binding each value, wrapping results) costs more than the database's own; this costs a few
    microseconds. The SQL is written once for SQLite and PostgreSQL with `?` placeholders; datetimes
    are bound with `timestamp`, UTCDateTime's own bind processor."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.cursor = connection.connection.driver_connection.cursor()
        self.sqlite = connection.dialect.name == "sqlite"
        self.timestamp = _timestamp_binder(connection.dialect)

    def batch_timestamps(self) -> Callable[[datetime | None], object]:
        """`timestamp` for one batch's rows, which mostly share their datetimes (when a try started
        and ended): each distinct value is bound once."""
        return functools.lru_cache(maxsize=None)(self.timestamp)

    def _sql(self, sql: str) -> str:
        # psycopg's placeholder; none of these statements has a literal ? or %
        return sql if self.sqlite else sql.replace("?", "%s")

    def rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        self.cursor.execute(self._sql(sql), params)
        return self.cursor.fetchall()

    def execute(self, sql: str, params: Sequence = ()) -> None:
        self.cursor.execute(self._sql(sql), params)

    def executemany(self, sql: str, params: list[Sequence]) -> None:
        self.cursor.executemany(self._sql(sql), params)

    def update_by_id(self, table: str, columns: Sequence[str], rows: list[Sequence]) -> None:
        """Each row's `columns` set (values in `columns` order, then the row's id). On SQLite, one
        UPDATE … FROM a VALUES list for up to a few thousand rows: an executemany ran the statement
        once a row, setting up the table's triggers each time, at 2.5× the cost. On PostgreSQL an
        executemany, which psycopg pipelines (a VALUES list there would need every type spelled)."""
        if not rows:
            return
        if not self.sqlite:
            self.executemany(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?", rows)
            return
        names = (*columns, "id")
        for chunk in chunks(rows, 30000 // len(names)):
            values = ", ".join([f"({self.marks(len(names))})"] * len(chunk))
            self.execute(f"WITH v({', '.join(names)}) AS (VALUES {values}) UPDATE {table} SET "
                         f"{', '.join(f'{c} = v.{c}' for c in columns)} FROM v WHERE {table}.id = v.id",
                         [value for row in chunk for value in row])

    @staticmethod
    def marks(count: int) -> str:
        return ", ".join(["?"] * count)

    def insert(self, table: str, columns: Sequence[str], rows: list[Sequence], returning: str = "") -> list[tuple]:
        """Multi-row INSERTs of `rows` (values in `columns` order), a few hundred rows a statement
        (under SQLite's 32,766 and PostgreSQL's 65,535 parameters); the rows RETURNING gives back,
        in no promised order."""
        returned: list[tuple] = []
        for chunk in chunks(rows, max(1, 9000 // len(columns))):
            sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                   + ", ".join([f"({self.marks(len(columns))})"] * len(chunk)))
            values = [value for row in chunk for value in row]
            if returning:
                returned += self.rows(f"{sql} RETURNING {returning}", values)
            else:
                self.execute(sql, values)
        return returned


@functools.cache
def _timestamp_binder(dialect) -> Callable[[datetime | None], object]:
    """UTCDateTime's bind processor for `dialect`: naive UTC text on SQLite, aware on PostgreSQL."""
    return UTCDateTime().dialect_impl(dialect).bind_processor(dialect)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # We issue BEGIN ourselves (below): pysqlite's implicit transactions break SAVEPOINT.
    dbapi_connection.isolation_level = None
    # WAL lets readers run while a writer commits; NORMAL sync is safe with WAL and much faster.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-16384")  # 16 MB per connection; a process holds several
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA journal_size_limit=67108864")  # give a burst's WAL back to the disk after it
    # Deleted or overwritten values (an erased name, a message body) are zeroed in their pages, not
    # left in free space where a copy of the file would still show them (LGPD).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


READ_ONLY = {"read_only": True}


@contextmanager
def reading(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A read-only session: on SQLite it takes no write lock, so a long read does not hold up the
    webhooks and dispatch that wait for it, nor count as a writer background jobs yield to."""
    with session_factory() as session:
        session.connection(execution_options=READ_ONLY)
        yield session
        session.rollback()


class WriteGate:
    """Who goes first for one SQLite file's write lock among this process's threads: background
    work (a campaign's batches, an import) waits to begin while an interactive writer (a request,
    an operator's message on the urgent queue) is waiting for the lock.

    SQLite alone would not order them: a writer that finds the lock taken sleeps in its busy
    handler and retries up to 100 ms later, by when the next background transaction has usually
    taken the lock again, so an operator's message could wait seconds behind a campaign. Waiting
    is bounded (MAX_YIELD_SECONDS a transaction) so a stream of requests cannot starve the jobs."""

    MAX_YIELD_SECONDS = 2.0

    def __init__(self):
        self._waiting = 0  # interactive writers inside BEGIN IMMEDIATE
        self._changed = threading.Condition()

    @contextmanager
    def interactive(self) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
        try:
            yield
        finally:
            with self._changed:
                self._waiting -= 1
                self._changed.notify_all()

    def yield_to_interactive(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._waiting == 0, timeout=self.MAX_YIELD_SECONDS)


_background = threading.local()


@contextmanager
def background_writes() -> Iterator[None]:
    """Mark this thread's transactions inside the block as background work (see WriteGate)."""
    outer = getattr(_background, "on", False)
    _background.on = True
    try:
        yield
    finally:
        _background.on = outer


def _sqlite_begin(gate: WriteGate) -> Callable[[Connection], None]:
    def begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two transactions that read then write would
        # otherwise fail with SQLITE_BUSY_SNAPSHOT instead of waiting on busy_timeout. Connections
        # marked with READ_ONLY execution options never write, so they skip the lock.
        if connection.get_execution_options().get("read_only"):
            connection.exec_driver_sql("BEGIN")
        elif getattr(_background, "on", False):
            gate.yield_to_interactive()
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            with gate.interactive():
                connection.exec_driver_sql("BEGIN IMMEDIATE")
    return begin


def make_engine(url: str, **kwargs) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Webhook batches run their statements with one IN list or VALUES row per item, so each
        # batch size is its own SQL text: a few hundred of them, which thrash the driver's default
        # 128-statement cache, and preparing a multi-row INSERT again costs more than running it.
        engine = create_engine(url, connect_args={"check_same_thread": False, "cached_statements": 1024}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin(WriteGate()))
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class WalCheckpointer:
    """SQLite's WAL checkpoints, moved off the request path.

    By default the commit that pushes the WAL past 1000 pages copies them into the database and
    syncs the disk, so one webhook in a burst waits tens of milliseconds for everyone's writes.
    During a long run of writes (the server, an import) this thread checkpoints instead, a few
    times a second, while the process's own connections only checkpoint as a safety net if it
    falls far behind."""

    INTERVAL_SECONDS = 0.2
    SAFETY_NET_PAGES = 20_000

    def __init__(self, engine: Engine):
        self.engine = engine
        self.path = engine.url.database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)

    @staticmethod
    def wanted(engine: Engine) -> bool:
        return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")

    def start(self) -> WalCheckpointer:
        self.defer()
        self._thread.start()
        return self

    def defer(self) -> None:
        """This engine's connections leave checkpoints to a checkpointer: this one once started,
        or another process's on the same file (the webhook writer process)."""
        event.listen(self.engine, "checkout", self._on_checkout)

    def stop(self) -> None:
        event.remove(self.engine, "checkout", self._on_checkout)
        self._stop.set()
        self._thread.join(timeout=10)

    def _on_checkout(self, dbapi_connection, record, _proxy) -> None:
        if not record.info.get("wal_checkpointer"):
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={self.SAFETY_NET_PAGES}")
            record.info["wal_checkpointer"] = True

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=1000")
            while not self._stop.wait(self.INTERVAL_SECONDS):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a busy moment: the next round catches up
                    log.warning("background WAL checkpoint failed: %s", exc)
        finally:
            connection.close()


@contextmanager
def background_checkpoints(engine: Engine) -> Iterator[None]:
    """A WalCheckpointer for the span of a long run of writes (the server, an import); nothing
    for databases that are not SQLite files."""
    if not WalCheckpointer.wanted(engine):
        yield
        return
    checkpointer = WalCheckpointer(engine).start()
    try:
        yield
    finally:
        checkpointer.stop()


def truncate_wal(session: Session) -> bool:
    """Copy the WAL into the database file and cut it to nothing, so that the old copies of pages it
    holds (a name, a message an erasure just overwrote) are gone from the -wal file too. Commits
    nothing: run it after the commit (unit_of_work.after_commit). True when done, or not SQLite;
    False when another connection kept it from finishing (logged).

    Not done when the session joined a transaction someone else opened (it is not committed yet)."""
    bind = session.get_bind()
    if isinstance(bind, Connection) or not WalCheckpointer.wanted(bind):
        return True
    connection = sqlite3.connect(bind.url.database, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout=5000")  # a webhook batch's commit is milliseconds
        busy, _frames, _copied = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        busy = exc
    finally:
        connection.close()
    if busy:
        log.warning("the WAL was not truncated after an erasure (%s): old page copies stay in it until later "
                    "checkpoints overwrite them", "a reader or writer kept it" if busy == 1 else busy)
    return not busy


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The edge of a unit of work: commit when the block succeeds, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
