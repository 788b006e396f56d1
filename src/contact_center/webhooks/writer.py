"""Group commit for provider callbacks.

Webhooks arrive in bursts (a bulk send's delivery reports, a campaign's replies). Giving each its
own transaction makes request threads queue on the database's write lock (on SQLite, in sleeps of
up to 100 ms). One writer instead takes every callback waiting, records the replies among them
with set-based statements (messaging/inbound.py), keeps the malformed ones, and commits once
(write_batch). Status callbacks are written a slice of STATUS_SLICE statuses at a time (more when
no reply waits: IDLE_STATUS_SLICE), taking
turns with the replies (WorkQueue): a customer's reply never waits behind more than one slice,
however large the status callback that arrived just before it. The HTTP answer goes out only
after the commit of (the last slice of) its callback, so an acknowledged callback is durable.

Two writers run write_batch:
- WriterProcess, what `serve` uses: a child process of the web process. The database work then
  runs beside the event loop instead of taking turns with it for Python's interpreter lock, which
  on two cores serves a campaign's replies about a quarter faster (README, Performance).
- IngestWriter, a thread of the web process: for apps whose database only this process can reach
  (the test suite's rolled-back transactions), and wherever the lifespan did not start a process.
Callbacks travel to either as plain data (ReplyIn, StatusIn, RejectedIn).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import pickle
import queue
import signal
import socket
import struct
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from contact_center.channels.service import WebhookChannel
from contact_center.errors import DomainError
from contact_center.events import LiveEvent, make_bus
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.providers.base import StatusUpdate
from contact_center.providers.registry import PROVIDERS
from contact_center.settings import Settings
from contact_center.webhooks import events, service

log = logging.getLogger(__name__)
MAX_BATCH = 500
STATUS_SLICE = 50  # statuses a transaction: what a reply may have to wait for behind a status callback
IDLE_STATUS_SLICE = 4 * STATUS_SLICE  # when no reply waits
READ_TURN = 4 * STATUS_SLICE  # statuses read (parsed, checked) a turn: reading one costs about a quarter


class WriteFailed(Exception):
    """The batch this callback was in could not be committed; the provider should send it again."""


@dataclass
class StatusIn:
    """A status callback's raw body. The writer parses it (beside the web process's event loop,
    not on it: a 1,000-item body takes milliseconds), unless the web process has already, and
    applies its statuses."""

    source: str  # e.g. kolmeya.status
    channel: WebhookChannel
    raw: bytes
    # The statuses of `raw` when the web process has read them already (WhatsApp parses a body to
    # route it): the writer checks these instead of parsing the body a second time.
    updates: tuple[StatusUpdate, ...] | None = None

    @property
    def channel_id(self) -> int:
        return self.channel.id


@dataclass
class RejectedIn:
    """A malformed callback, kept in the raw-event log with what is wrong with it."""

    source: str
    channel: WebhookChannel
    raw: bytes
    reason: str


@dataclass
class ApplyIn:
    """A callback's events other than replies and statuses (a template's review, an opt-out, an
    identity change…), applied in the writer's transaction by the provider's function `apply`
    ("package.module:function", called with (session, item); its result is the callback's)."""

    source: str
    channel: WebhookChannel
    apply: str
    events: tuple
    payload: str  # the raw body, for the event log

    @property
    def channel_id(self) -> int:
        return self.channel.id


Item = ReplyIn | StatusIn | RejectedIn | ApplyIn
Outcome = tuple[Any, BaseException | None]  # (result, error): one of the two is None


def write_batch(session_factory: sessionmaker[Session], items: list[ReplyIn | RejectedIn | ApplyIn]) -> list[Outcome]:
    """Record replies (and keep malformed callbacks) in one transaction; an outcome per item, in order."""
    def write(session: Session) -> list[Outcome]:
        replies = [index for index, item in enumerate(items) if isinstance(item, ReplyIn)]
        outcomes: list[Outcome] = [(None, None)] * len(items)
        if replies:
            try:
                results = record_replies(session, [items[index] for index in replies])
                for index, result in zip(replies, results):
                    outcomes[index] = (result, None)
            except Exception:
                # Nothing else is written yet: start again, one savepoint per reply, so one bad
                # reply does not sink the batch.
                session.rollback()
                for index in replies:
                    outcomes[index] = _record_one(session, items[index])
        for index, item in enumerate(items):
            if isinstance(item, RejectedIn):
                outcomes[index] = _in_savepoint(session, lambda item=item: events.store_rejected(
                    session, item.source, item.channel.id, item.raw, item.reason))
            elif isinstance(item, ApplyIn):
                module, _, function = item.apply.partition(":")
                apply = getattr(importlib.import_module(module), function)
                outcomes[index] = _in_savepoint(session, lambda item=item, apply=apply: apply(session, item))
        return outcomes

    return _in_one_transaction(session_factory, f"webhook batch of {len(items)}", len(items), write)


def _in_one_transaction(session_factory: sessionmaker[Session], what: str, count: int,
                        write: Callable[[Session], list[Outcome]]) -> list[Outcome]:
    """`write`'s outcomes once committed; should the commit fail, every one of the `count`
    callbacks fails with WriteFailed (the provider sends it again)."""
    session = session_factory()
    try:
        outcomes = write(session)
        session.commit()
    except Exception as exc:
        session.rollback()
        log.exception("%s could not be committed", what)
        failure = WriteFailed(f"could not store the callback ({exc.__class__.__name__})")
        outcomes = [(None, failure)] * count
    finally:
        session.close()
    return outcomes


def _record_one(session: Session, item: ReplyIn) -> Outcome:
    try:
        with session.begin_nested():
            [result] = record_replies(session, [item])
        return result, None
    except Exception:
        log.exception("reply %s could not be recorded", item.reply.external_id)
        return None, WriteFailed("could not record the reply")


def _in_savepoint(session: Session, action) -> Outcome:
    """`action` in a savepoint: its failure is its callback's alone, not the batch's."""
    try:
        with session.begin_nested():
            return action(), None
    except Exception as exc:
        return None, exc


@dataclass
class _StatusWork:
    key: Any
    item: StatusIn
    reader: service.StatusReader
    done: int = 0  # statuses written so far
    result: service.IngestResult = field(default_factory=service.IngestResult)

    @property
    def updates(self) -> list[StatusUpdate]:
        return self.reader.updates

    @property
    def payload(self) -> str | None:
        """The raw body, kept as its event's payload when the callback holds one status."""
        return events.raw_text(self.item.raw) if len(self.updates) == 1 else None


def write_status_slice(session_factory: sessionmaker[Session], pieces: list[tuple[_StatusWork, int]]) -> list[Outcome]:
    """Apply the statuses of each callback from where it stands to `stop`, in one transaction;
    an outcome per piece."""
    def write(session: Session) -> list[Outcome]:
        return [_in_savepoint(session, lambda: service.record_statuses(
            session, work.item.source, work.item.channel_id, work.updates[work.done:stop], work.payload))
            for work, stop in pieces]

    return _in_one_transaction(session_factory, f"a slice of {len(pieces)} status callback(s)", len(pieces), write)


class WorkQueue:
    """What a writer has yet to write. Replies and malformed bodies go in batches of up to
    MAX_BATCH; status callbacks a slice of STATUS_SLICE statuses at a time (small ones share a
    slice, a large one takes several); the two take turns. `key` is the caller's handle on a
    callback (a future, or the web process's number for it)."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self._factory = session_factory
        self._quick: deque[tuple[Any, ReplyIn | RejectedIn]] = deque()
        self._statuses: deque[_StatusWork] = deque()
        self._statuses_turn = False
        self._writing: list[tuple[Any, ReplyIn | RejectedIn]] = []  # the batch being written

    def add(self, key: Any, item: Item) -> None:
        if isinstance(item, StatusIn):
            reader = service.StatusReader(PROVIDERS[item.channel.provider], item.raw, item.updates)
            self._statuses.append(_StatusWork(key, item, reader))
        else:
            self._quick.append((key, item))

    def __bool__(self) -> bool:
        return bool(self._quick or self._statuses)

    def write_next_or_fail(self) -> list[tuple[Any, Item, Outcome]]:
        """write_next, and should it ever raise (a bug), every waiting callback fails instead of
        the writer: the providers send them again, and the next ones are written."""
        try:
            return self.write_next()
        except Exception:
            log.exception("the webhook writer failed; failing the %d callback(s) it held",
                          len(self._quick) + len(self._statuses))
            failure = (None, WriteFailed("the webhook writer failed; send it again"))
            failed = [(key, item, failure) for key, item in (*self._writing, *self._quick)]
            self._writing = []
            failed += [(work.key, work.item, failure) for work in self._statuses]
            self._quick.clear()
            self._statuses.clear()
            return failed

    def write_next(self) -> list[tuple[Any, Item, Outcome]]:
        """Write the next batch of replies or slice of statuses; (key, item, outcome) of each
        callback it finished."""
        if self._statuses and (self._statuses_turn or not self._quick):
            self._statuses_turn = False
            return self._write_slice()
        self._statuses_turn = True
        self._writing = [self._quick.popleft() for _ in range(min(MAX_BATCH, len(self._quick)))]
        outcomes = write_batch(self._factory, [item for _, item in self._writing])
        batch, self._writing = self._writing, []
        return [(key, item, outcome) for (key, item), outcome in zip(batch, outcomes)]

    def _write_slice(self) -> list[tuple[Any, Item, Outcome]]:
        """A turn of the status callbacks: read a part of what has not been read yet, then write a
        slice of the statuses of the callbacks at the front that have been read whole."""
        finished = self._read_some()
        taken = []
        # With no reply waiting, a larger slice spreads a commit over more statuses; a reply that
        # arrives meanwhile still waits for one slice at most.
        room = STATUS_SLICE if self._quick else IDLE_STATUS_SLICE
        for work in self._statuses:
            if room <= 0 or not work.reader.done:
                break
            stop = min(len(work.updates), work.done + room)
            taken.append((work, stop))
            room -= stop - work.done
        for (work, stop), (result, error) in zip(taken, write_status_slice(self._factory, taken) if taken else ()):
            if error is None:
                work.result.merge(result)
                work.done = stop
            if error is not None or work.done >= len(work.updates):
                finished.append((work.key, work.item, (None, error) if error is not None else (work.result, None)))
                self._statuses.remove(work)
        return finished

    def _read_some(self) -> list[tuple[Any, Item, Outcome]]:
        """Read up to READ_TURN statuses of the callbacks not read yet, in order; the ones refused."""
        refused, room = [], READ_TURN
        for work in list(self._statuses):
            if room <= 0:
                break
            if work.reader.done:
                continue
            had = len(work.updates)
            error = self._read(work, room)
            room -= max(1, len(work.updates) - had)
            if error is not None:
                refused.append((work.key, work.item, (None, error)))
                self._statuses.remove(work)
        return refused

    def _read(self, work: _StatusWork, count: int) -> BaseException | None:
        """Read up to `count` more statuses of the body; a malformed one is kept in the raw-event log
        (one too large is not). Whatever happens here is this callback's problem, never the writer's."""
        try:
            work.reader.read(count)
        except service.PayloadTooLarge as exc:
            return exc
        except service.PayloadRejected as exc:
            [(_, error)] = write_batch(self._factory, [RejectedIn(work.item.source, work.item.channel,
                                                                  work.item.raw, exc.message)])
            return error or exc
        except Exception as exc:
            log.exception("a %s callback on channel %s could not be parsed", work.item.source, work.item.channel_id)
            return WriteFailed(f"could not read the callback ({exc.__class__.__name__})")
        return None


def _resolve(resolved: list[tuple[asyncio.Future, Outcome]]) -> None:
    for future, (result, error) in resolved:
        if future.cancelled():  # the client went away
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class IngestWriter:
    """The writer on a thread of this process."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self._factory = session_factory
        self._queue: queue.SimpleQueue[tuple[Item, asyncio.Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> asyncio.Future:
        """`item` in the next batch; resolves after its commit. Call from the event loop that will
        await the result."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put((item, future))
        return future

    async def stop(self) -> None:
        """Write what was submitted, then end the thread."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join, 10)

    def _run(self) -> None:
        work = WorkQueue(self._factory)
        stopping = False
        while work or not stopping:
            waiting = [] if work else [self._queue.get()]  # block only with nothing to write
            while True:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for entry in waiting:
                if entry is None:
                    stopping = True
                else:
                    work.add(entry[1], entry[0])
            if work:
                self._resolve(work.write_next_or_fail())

    @staticmethod
    def _resolve(finished: list[tuple[asyncio.Future, Item, Outcome]]) -> None:
        # One wake-up per event loop for the whole batch, not one per callback.
        by_loop: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
        for future, _item, outcome in finished:
            by_loop[future.get_loop()].append((future, outcome))
        for loop, resolved in by_loop.items():
            loop.call_soon_threadsafe(_resolve, resolved)


# --- the writer process ------------------------------------------------------------------------

# Frames as multiprocessing.connection.Connection writes them, so the child can use one.
_FRAME = struct.Struct("!i")
_READY = _FRAME.pack(5) + b"ready"  # the child's first frame
STARTUP_SECONDS = 60  # importing and opening the database
RESTART_DELAY_SECONDS = 5


class WriterProcess:
    """write_batch in a child process, fed over a socket pair by the event loop.

    Callbacks that arrive during one turn of the loop go over as one message; the child takes
    every message waiting into its next batch. The answer brings back each callback's outcome
    and, without Redis, the live events the batch announced, which are published here (operators'
    screens are subscribed to this process). If the child dies, the callbacks it held fail with WriteFailed
    (the provider sends them again) and a new child starts."""

    def __init__(self, settings: Settings, publish: Callable[[list[LiveEvent]], None]):
        self._settings = settings
        self._publish = publish
        self._futures: dict[int, asyncio.Future] = {}
        self._outbox: list[tuple[int, Item]] = []
        self._numbers = iter(range(1, 1 << 62))
        self._process: multiprocessing.process.BaseProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start a child and return once it has its database open and takes callbacks."""
        parent_end, child_end = socket.socketpair()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_child_main, args=(child_end, self._settings), name="webhook-writer", daemon=True)
        self._process.start()
        child_end.close()
        reader, writer = await asyncio.open_connection(sock=parent_end)
        try:  # the child's first frame says it is ready
            await asyncio.wait_for(reader.readexactly(len(_READY)), timeout=STARTUP_SECONDS)
        except (asyncio.IncompleteReadError, TimeoutError) as exc:
            writer.close()
            timed_out = isinstance(exc, TimeoutError)
            if timed_out:
                self._process.kill()
            await asyncio.to_thread(self._process.join, 10)  # one that closed its end is exiting
            what = (f"did not open the database within {STARTUP_SECONDS} s" if timed_out
                    else f"exited with code {self._process.exitcode}; its error is in the log above")
            raise RuntimeError(f"the webhook writer process {what}. Check the database settings, or set "
                               "CONTACT_CENTER_WEBHOOK_WRITER_PROCESS=false to record callbacks on a thread "
                               "of the server instead") from None
        self._writer = writer
        self._reading = asyncio.create_task(self._read(reader))
        log.info("webhook writer process %d started", self._process.pid)
        if self._outbox:  # what was submitted while a new child started
            self._send()

    def submit(self, item: Item) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        number = next(self._numbers)
        self._futures[number] = future
        if not self._outbox and self._writer is not None:
            loop.call_soon(self._send)
        self._outbox.append((number, item))
        return future

    def _send(self) -> None:
        if self._writer is None or not self._outbox:
            return
        outbox, self._outbox = self._outbox, []
        for start in range(0, len(outbox), MAX_BATCH):  # a frame never holds more than a batch
            data = pickle.dumps(outbox[start:start + MAX_BATCH], protocol=pickle.HIGHEST_PROTOCOL)
            self._writer.write(_FRAME.pack(len(data)) + data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = _FRAME.unpack(await reader.readexactly(_FRAME.size))
                outcomes, events = pickle.loads(await reader.readexactly(size))
                _resolve([(self._futures.pop(number), outcome) for number, outcome in outcomes])
                if events:
                    self._publish(events)
        except asyncio.IncompleteReadError:
            pass  # it exited
        except Exception:
            log.exception("webhook writer process %d: its answer could not be read; replacing it", self._process.pid)
        await self._lost()

    async def _lost(self) -> None:
        """The child is gone: fail what it held, and start another unless we are stopping."""
        self._writer.close()
        self._writer = None
        if self._process.is_alive():  # it answered something unreadable
            self._process.kill()  # (it ignores SIGTERM)
        await asyncio.to_thread(self._process.join, 10)
        if not self._stopping:
            waiting = {number for number, _ in self._outbox}  # not sent yet: they go to the next child
            self._fail([number for number in self._futures if number not in waiting])
            log.error("webhook writer process %d exited (code %s); starting another",
                      self._process.pid, self._process.exitcode)
        while not self._stopping:
            try:
                await self.start()
                return
            except Exception:
                log.exception("webhook writer process: could not start another; trying again in %d s",
                              RESTART_DELAY_SECONDS)
                self._fail_all()
                await asyncio.sleep(RESTART_DELAY_SECONDS)
        self._fail_all()  # stopping: no child will write what is left

    def _fail(self, numbers: list[int]) -> None:
        failure = WriteFailed("the webhook writer stopped; send it again")
        _resolve([(self._futures.pop(number), (None, failure)) for number in numbers])

    def _fail_all(self) -> None:
        self._fail(list(self._futures))
        self._outbox = []

    async def stop(self) -> None:
        """Let the child finish what it has, then wait for it."""
        self._stopping = True
        if self._writer is not None:
            self._send()  # what this turn of the loop submitted
            self._writer.write_eof()  # the child reads to the end, answers, and exits
        if self._reading is not None:
            await asyncio.wait([self._reading], timeout=10)
        if self._process is not None:
            await asyncio.to_thread(self._process.join, 10)
            if self._process.is_alive():
                log.warning("webhook writer process %d did not stop within 10 s; killing it", self._process.pid)
                self._process.kill()  # (it ignores SIGTERM)


class _ForwardedEvents:
    """The child's event bus without Redis: keeps what a batch announces, for the web process to
    publish to its subscribers."""

    epoch = "writer-process"

    def __init__(self):
        self.events: list[LiveEvent] = []

    def publish(self, event: LiveEvent) -> None:
        self.events.append(event)

    def publish_many(self, events: list[LiveEvent]) -> None:
        self.events += events

    def take(self) -> list[LiveEvent]:
        events, self.events = self.events, []
        return events

    def subscribe(self, deliver):
        raise RuntimeError("the writer process has no subscribers: its events go to the web process")

    def catch_up(self, number: int):
        return None

    def position(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _portable(item: Item, outcome: Outcome) -> Outcome:
    """An outcome that crosses to the web process: errors other than ours (a database error, a
    bug) are logged here, with their traceback and the callback they hit, and cross as WriteFailed
    (answered 500, so the provider sends it again)."""
    result, error = outcome
    if error is None or isinstance(error, (DomainError, WriteFailed)):
        return outcome
    log.error("%s callback on channel %s could not be stored", item.source,
              item.channel.id if isinstance(item, RejectedIn) else item.channel_id, exc_info=error)
    return None, WriteFailed(f"could not store the callback ({error.__class__.__name__})")


def _child_main(channel: socket.socket, settings: Settings) -> None:
    from contact_center.db import READ_ONLY, WalCheckpointer
    from contact_center.jobs import make_jobs
    from contact_center.runtime import Runtime, freeze_startup_heap, install, open_database

    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the web process
    # decides when this one stops (it closes the socket, or dies and the kernel closes it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    engine, factory = open_database(settings, migrate=False)  # the web process migrated before starting it
    with engine.connect().execution_options(**READ_ONLY) as probe:  # "ready" means it can reach the database
        probe.exec_driver_sql("SELECT 1")
    if WalCheckpointer.wanted(engine):
        WalCheckpointer(engine).defer()  # the web process's checkpointer does the work
    # With Redis this process publishes like any other; alone, its events go back to the web
    # process, whose subscribers are the operators' screens.
    forwarded = None if settings.redis_url else _ForwardedEvents()
    install(Runtime(settings=settings, engine=engine, session_factory=factory, jobs=make_jobs(settings),
                    events=forwarded or make_bus(settings.redis_url)))
    connection = Connection(channel.detach())
    connection.send_bytes(_READY[_FRAME.size:])
    work = WorkQueue(factory)
    closing = False
    # What is alive now (modules, the engine) lives as long as the process: the collector need not
    # walk it again each time a large callback's parse fills the young generations.
    freeze_startup_heap()
    try:
        while work or not closing:
            try:
                # Wait for callbacks only with nothing to write; take all that are there.
                while not closing and (not work or connection.poll()):
                    for number, item in pickle.loads(connection.recv_bytes()):
                        work.add(number, item)
            except EOFError:
                closing = True  # the web process closed its end: write what is left, then stop
            if not work:
                continue
            finished = work.write_next_or_fail()
            answer = ([(number, _portable(item, outcome)) for number, item, outcome in finished],
                      forwarded.take() if forwarded else [])
            connection.send_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        connection.close()
        engine.dispose()
