"""Group commit for provider callbacks.

Webhooks arrive in bursts (a bulk send's delivery reports, a campaign's replies). Giving each its
own transaction makes request threads queue on the database's write lock (on SQLite, in sleeps of
up to 100 ms). One writer thread instead takes every callback waiting, records the replies among
them with set-based statements (messaging/inbound.py), applies the rest each in its own savepoint,
and commits once. The HTTP answer goes out only after that commit, so an acknowledged callback is
durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from contact_center.messaging.inbound import ReplyIn, record_replies

log = logging.getLogger(__name__)
MAX_BATCH = 500

Work = Callable[[Session], Any]


class WriteFailed(Exception):
    """The batch this callback was in could not be committed; the provider should send it again."""


class IngestWriter:
    def __init__(self, session_factory: sessionmaker[Session]):
        self._factory = session_factory
        self._queue: queue.SimpleQueue[tuple[ReplyIn | Work, asyncio.Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
        self._thread.start()

    def submit(self, work: ReplyIn | Work) -> asyncio.Future:
        """A reply to record, or `work(session)` to run, in the next batch; resolves after its commit.
        Call from the event loop that will await the result."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put((work, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._write(batch)
                    return
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[tuple[ReplyIn | Work, asyncio.Future]]) -> None:
        replies = [(item, future) for item, future in batch if isinstance(item, ReplyIn)]
        works = [(item, future) for item, future in batch if not isinstance(item, ReplyIn)]
        outcomes: list[tuple[asyncio.Future, Any, BaseException | None]] = []
        session = self._factory()
        try:
            if replies:
                try:
                    results = record_replies(session, [item for item, _ in replies])
                    outcomes += [(future, result, None) for (_, future), result in zip(replies, results)]
                except Exception:
                    # Nothing else is written yet: start again, one savepoint per reply, so one bad
                    # reply does not sink the batch.
                    session.rollback()
                    for reply in replies:
                        outcomes.append(self._record_one(session, *reply))
            for work, future in works:
                try:
                    with session.begin_nested():
                        outcomes.append((future, work(session), None))
                except Exception as exc:  # this callback's own problem (bad payload, unknown token…)
                    outcomes.append((future, None, exc))
            session.commit()
        except Exception as exc:
            session.rollback()
            log.exception("webhook batch of %d could not be committed", len(batch))
            failure = WriteFailed(f"could not store the callback ({exc.__class__.__name__})")
            outcomes = [(future, None, failure) for _, future in batch]
        finally:
            session.close()
        # One wake-up per event loop for the whole batch, not one per callback.
        by_loop: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
        for outcome in outcomes:
            by_loop[outcome[0].get_loop()].append(outcome)
        for loop, resolved in by_loop.items():
            loop.call_soon_threadsafe(_resolve, resolved)

    @staticmethod
    def _record_one(session: Session, item: ReplyIn, future: asyncio.Future) -> tuple:
        try:
            with session.begin_nested():
                [result] = record_replies(session, [item])
            return future, result, None
        except Exception:
            log.exception("reply %s could not be recorded", item.reply.external_id)
            return future, None, WriteFailed("could not record the reply")


def _resolve(outcomes: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():  # the client went away
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
