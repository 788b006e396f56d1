"""The totals that live in the database, read when Prometheus scrapes: messages by state, those in
flight by channel, what waits to be dispatched, and the job queues' pending tasks. Every web
process reads the same rows, so each answers the same totals (take one, or `max`, never `sum`,
across processes).

The reads avoid the rows: the totals by channel and state come from the reports' roll-up of
outbound messages by status (report_message_days, kept by trigger as statuses move), and customers'
messages, all `received`, are the rest of each channel's count (its index); the messages in flight
by channel come from the partial ix_messages_waiting (which holds only what is not final: it
grows with the backlog, not the table).
Counting every state by channel would read every row of the table, seconds at a million messages.
A scrape within CACHE_SECONDS of the last one gets the same figures, so several scrapers (or a
reloaded dashboard) cost one read. A source that does not answer is reported as down
(`contact_center_metrics_source_up`), never as a failed scrape: the per-process figures still
come through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text

from contact_center.channels.models import Channel
from contact_center.db import READ_ONLY, utcnow
from contact_center.jobs import Jobs
from contact_center.messaging.models import IN_FLIGHT_SQL, WAITING, WAITING_SQL, Message
from contact_center.reports.models import MessageDay

log = logging.getLogger(__name__)
CACHE_SECONDS = 5.0


def in_flight_by_channel(dialect: str):
    """The count of messages in flight, from ix_messages_waiting (status first, then channel): its
    own condition written out (SQLite uses a partial index only for its own words) beside the
    in-flight states it seeks, and on SQLite named, as its planner prefers another index when it
    has no statistics, which then reads every row it finds. The `sent` messages the index also
    holds (many, where delivery reports do not come) are not read."""
    indexed = " INDEXED BY ix_messages_waiting" if dialect == "sqlite" else ""
    return text(f"SELECT channel_id, status, count(*) FROM messages{indexed} WHERE {WAITING_SQL} AND {IN_FLIGHT_SQL} "
                "GROUP BY channel_id, status")



@dataclass(frozen=True)
class Messages:
    by_state: list[tuple[str, str, str, int]]  # channel, kind, state, messages
    in_flight: list[tuple[str, str, str, int]]  # (channel, kind, state, count)
    oldest_queued_seconds: float | None


@dataclass(frozen=True)
class Figures:
    messages: Messages | None  # None: the database did not answer
    queues: list[tuple[str, str, int]] | None  # (queue, state, tasks); None: queue storage down
    database_seconds: float


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine, jobs: Jobs, cache_seconds: float = CACHE_SECONDS):
        self.engine = engine
        self.jobs = jobs
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()  # concurrent scrapes wait for one read instead of each reading
        self._cached: tuple[float, Figures] | None = None

    def figures(self) -> Figures:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds:
                self._cached = (now, self._read())
            return self._cached[1]

    def _read(self) -> Figures:
        started = time.perf_counter()
        messages = None
        try:
            messages = self._read_messages()
        except Exception as exc:  # a scrape reports the outage instead of failing
            log.error("metrics: the database did not answer: %s", exc.__class__.__name__)
        database_seconds = time.perf_counter() - started
        queues = None
        try:
            queues = self._read_queues()
        except Exception as exc:
            log.error("metrics: the job queue did not answer: %s", exc.__class__.__name__)
        return Figures(messages, queues, database_seconds)

    def _read_messages(self) -> Messages:
        with self.engine.connect().execution_options(**READ_ONLY) as connection:
            channels = {row.id: (row.name, row.kind)
                        for row in connection.execute(select(Channel.id, Channel.name, Channel.kind))}
            by_state = _by_channel_and_state(connection)
            in_flight = connection.execute(in_flight_by_channel(connection.dialect.name)).all()
            oldest = connection.scalar(select(func.min(Message.queued_at)).where(Message.status == "queued", WAITING))
        def named(channel_id):
            return channels.get(channel_id, (str(channel_id), "unknown"))

        return Messages(
            [(*named(channel_id), status, count) for channel_id, status, count in by_state],
            [(*named(channel_id), status, count) for channel_id, status, count in in_flight],
            max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else None)

    def _read_queues(self) -> list[tuple[str, str, int]]:
        queues = [("main", self.jobs.huey)] + ([("urgent", self.jobs.urgent)]
                                               if self.jobs.urgent is not self.jobs.huey else [])
        found = []
        for name, huey in queues:
            found.append((name, "pending", huey.pending_count()))
            found.append((name, "scheduled", huey.scheduled_count()))
        return found

    def collect(self) -> Iterator[Metric]:
        figures = self.figures()
        up = GaugeMetricFamily("contact_center_metrics_source_up", "1 when the source of the database figures "
                               "answered the last read, 0 when it did not.", labels=["source"])
        up.add_metric(["database"], 0 if figures.messages is None else 1)
        up.add_metric(["queue"], 0 if figures.queues is None else 1)
        yield up
        took = GaugeMetricFamily("contact_center_metrics_database_read_seconds",
                                 "How long the last read of the message totals took.")
        took.add_metric([], figures.database_seconds)
        yield took
        if figures.messages is not None:
            yield from _message_families(figures.messages)
        if figures.queues is not None:
            tasks = GaugeMetricFamily("contact_center_job_queue_tasks", "Tasks in the job queues: pending (ready to "
                                      "run) and scheduled (for later).", labels=["queue", "state"])
            for queue, state, count in figures.queues:
                tasks.add_metric([queue, state], count)
            yield tasks


def _by_channel_and_state(connection) -> list[tuple[int, str, int]]:
    """(channel id, state, messages): outbound ones from the reports' roll-up by status, and
    customers' (all `received`) as the rest of each channel's count, read from its index."""
    found = [tuple(row) for row in connection.execute(
        select(MessageDay.channel_id, MessageDay.status, func.sum(MessageDay.messages))
        .group_by(MessageDay.channel_id, MessageDay.status)) if row[2]]
    outbound = Counter()
    for channel_id, _, count in found:
        outbound[channel_id] += count
    for channel_id, stored in connection.execute(select(Message.channel_id, func.count()).group_by(Message.channel_id)):
        if stored > outbound[channel_id]:
            found.append((channel_id, "received", stored - outbound[channel_id]))
    return found


def _message_families(figures: Messages) -> Iterator[Metric]:
    by_state = GaugeMetricFamily("contact_center_messages", "Messages stored, by channel and state (received: a "
                                 "customer's).", labels=["channel", "kind", "state"])
    for channel, kind, state, count in figures.by_state:
        by_state.add_metric([channel, kind, state], count)
    yield by_state
    in_flight = GaugeMetricFamily("contact_center_messages_in_flight", "Messages not with the provider for sure "
                                  "yet (scheduled, queued, sending, unknown), by channel.",
                                  labels=["channel", "kind", "state"])
    for channel, kind, state, count in figures.in_flight:
        in_flight.add_metric([channel, kind, state], count)
    yield in_flight
    waiting = GaugeMetricFamily("contact_center_dispatch_waiting_messages",
                                "Messages queued for dispatch (retries and paused channels included).")
    waiting.add_metric([], sum(count for *_, state, count in figures.in_flight if state == "queued"))
    yield waiting
    oldest = GaugeMetricFamily("contact_center_dispatch_oldest_waiting_seconds",
                               "Age of the oldest message queued for dispatch; 0 when none waits.")
    oldest.add_metric([], figures.oldest_queued_seconds or 0.0)
    yield oldest
