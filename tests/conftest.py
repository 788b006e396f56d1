"""Test databases: every test that takes `db` runs on SQLite and on PostgreSQL, migrated by Alembic.

PostgreSQL comes from CONTACT_CENTER_TEST_POSTGRES_URL (`.ci/run` points it at the local server);
without it those tests are skipped with the reason. With CONTACT_CENTER_FORBID_SKIPS=1 (set by
`.ci/run`) any skipped test fails the run, so CI cannot go green on half the suite.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from huey import MemoryHuey

from contact_center.app import create_app
from contact_center.auth import service as auth_service
from contact_center.channels import service as channels
from contact_center.db import make_engine
from contact_center.inbox.models import Conversation
from contact_center.jobs import Jobs
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.migrations import upgrade
from contact_center.providers.base import InboundReply
from contact_center.runtime import Runtime, install
from contact_center.settings import Settings

# The command line speaks the terminal's locale (clitools.language); the suite, and every command it
# runs, reads the sentences as the code writes them, whatever this machine's locale is.
for _name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_name, None)
os.environ["LANG"] = "C.UTF-8"

POSTGRES_URL = os.environ.get("CONTACT_CENTER_TEST_POSTGRES_URL", "")
FORBID_SKIPS = os.environ.get("CONTACT_CENTER_FORBID_SKIPS") == "1"


def _postgres_engine() -> Iterator[Engine]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need CONTACT_CENTER_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    schema = f"cc_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at CONTACT_CENTER_TEST_POSTGRES_URL is unreachable: {exc.__class__.__name__}")
    engine = make_engine(POSTGRES_URL)

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection, _record):  # a private schema per run keeps runs apart
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{schema}"')
        dbapi_connection.commit()

    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _sqlite_engine(tmp_path_factory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("sqlite") / "test.db"
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def race(job, workers: int = 6, timeout: float = 60) -> None:
    """Run `job` in `workers` threads released at the same instant, as that many workers would;
    fails with what any of them raised."""
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            job()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert errors == []


def _migrated(kind: str, tmp_path_factory) -> Iterator[Engine]:
    source = _sqlite_engine(tmp_path_factory) if kind == "sqlite" else _postgres_engine()
    engine = next(source)
    upgrade(engine)
    yield engine
    next(source, None)


@pytest.fixture(scope="session", params=BACKENDS)
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    """A migrated database of each kind, shared by the session."""
    yield from _migrated(request.param, tmp_path_factory)


@pytest.fixture(params=BACKENDS)
def own_database(request, tmp_path_factory):
    """A database of its own for the test, committed for real (concurrent workers and other
    processes need their own connections)."""
    source = _migrated(request.param, tmp_path_factory)
    engine = next(source)
    yield engine
    next(source, None)


@pytest.fixture
def channel(db, sandbox):
    """A sandbox channel pointed at the test module's `sandbox` fixture (a SandboxServer)."""
    from contact_center.channels.service import create_channel
    from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN

    sandbox.reset()
    channel = create_channel(db, name="SMS Kolmeya", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN},
                             settings={"base_url": sandbox.base_url})
    db.commit()
    return channel


@pytest.fixture(params=BACKENDS)
def live(request, tmp_path_factory, tmp_path):
    """The product running for real on a fresh database of each kind (see tests/live.py)."""
    from tests.live import start_live

    source = _migrated(request.param, tmp_path_factory)
    engine = next(source)
    marker = request.node.get_closest_marker("sandbox")
    settings_marker = request.node.get_closest_marker("live_settings")
    live, stop = start_live(engine, tmp_path, marker.kwargs if marker else None,
                            settings_options=settings_marker.kwargs if settings_marker else None)
    yield live
    stop()
    next(source, None)


@pytest.fixture
def db_connection(engine: Engine):
    """A connection inside a transaction that is rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    yield connection
    outer.rollback()
    connection.close()


@pytest.fixture
def session_factory(db_connection) -> sessionmaker[Session]:
    # Commits inside the code under test become savepoint releases; the outer rollback undoes all.
    return sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def db(session_factory) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def settings(tmp_path) -> Settings:
    # Callbacks are written on a thread: a writer process could not see the test's transaction.
    return Settings(data_dir=tmp_path, secret_key="test-secret-key-0123456789", webhook_writer_process=False,
                    _env_file=None)


@pytest.fixture
def runtime(settings, engine, session_factory) -> Runtime:
    """The process wiring on the test transaction; jobs run at once, in the caller's thread."""
    return install(Runtime(settings=settings, engine=engine, session_factory=session_factory,
                           jobs=Jobs(MemoryHuey("tests", immediate=True))))


@pytest.fixture
def app(runtime):
    return create_app(runtime)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_user(db):
    """make_user(username, role) -> (user, clear API token), committed."""

    def make(username: str, role: str = "agent"):
        user = auth_service.create_user(db, username=username, name=username.title(), password="correct horse", role=role)
        _, token = auth_service.create_token(db, user, "tests")
        db.commit()
        return user, token

    return make


@pytest.fixture
def agent_headers(make_user) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_user('ana', 'agent')[1]}"}


@pytest.fixture
def supervisor_headers(make_user) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_user('sofia', 'supervisor')[1]}"}


@pytest.fixture
def admin_headers(make_user) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_user('root', 'admin')[1]}"}


def pytest_sessionfinish(session, exitstatus):
    if not FORBID_SKIPS:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(
            f"CONTACT_CENTER_FORBID_SKIPS=1: {len(skipped)} test(s) were skipped; every test must run here.",
            red=True,
        )
        session.exitstatus = 1


# --- customers writing in, the way the product records them (inbox and web tests) -----------------

_external = itertools.count(1)


@pytest.fixture
def sms(db):
    """An SMS channel (the sandbox provider; nothing is sent in these tests)."""
    channel = channels.create_channel(db, name="SMS Principal", provider="kolmeya_sandbox", credentials={"token": "t"})
    db.flush()
    return channel


@pytest.fixture
def customer_writes(db):
    """customer_writes(channel, phone, text) -> the Conversation the reply landed in."""

    def write(channel, phone: str, text: str = "Olá", at: datetime | None = None) -> Conversation:
        reply = InboundReply(external_id=f"test-{next(_external)}", phone=phone, text=text,
                             received_at=at or datetime.now(UTC), in_reply_to_reference=None,
                             in_reply_to_provider_id=None)
        [recorded] = record_replies(db, [ReplyIn("tests.reply", channel.id, reply, payload="{}")])
        assert recorded.outcome == "applied", recorded
        conversation_id = db.scalar(select(Message.conversation_id).where(Message.id == recorded.message_id))
        conversation = db.get(Conversation, conversation_id)
        db.refresh(conversation)
        return conversation

    return write
