"""How long a /metrics scrape takes on a large database: the message totals by state (from the
reports' roll-up and the table's count) and those in flight by channel (from their partial index)
are read at scrape time (metrics/database.py).

    uv run python bench/metrics_scrape.py [--messages 1000000] [--rounds 5] [--database-url URL]

Builds a database (SQLite in a temporary directory unless --database-url names an empty
PostgreSQL database) with `--messages` messages over three channels in the states a year of
campaigns leaves (mostly delivered), then times the database read a scrape makes when its cache
has expired (every CACHE_SECONDS at most, whatever the number of scrapers) and a scrape within the
cache, each over `--rounds` rounds, through the same Observability the app's /metrics uses; and,
as the baseline, the query that would count every state by channel (it reads the whole table).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select, text

from contact_center.channels.kinds import SMS
from contact_center.channels.service import create_channel
from contact_center.db import transaction, utcnow
from contact_center.messaging import rows
from contact_center.messaging.models import Message
from contact_center.messaging.service import queue_outbound
from contact_center.metrics.api import Observability
from contact_center.metrics.database import DatabaseCollector
from contact_center.runtime import build_runtime
from contact_center.settings import Settings

# A year of sends: mostly delivered, a few in every other state, a handful still waiting.
STATES = {"delivered": 0.78, "read": 0.04, "sent": 0.06, "failed": 0.04, "rejected": 0.01, "blocked": 0.02,
          "expired": 0.01, "cancelled": 0.01, "queued": 0.002, "unknown": 0.001, "scheduled": 0.017}
CHANNELS = ("SMS Cobrança", "SMS Avisos", "SMS Sandbox")
SEED = 20_000  # built one by one by the row builder; the rest are copies


def build(runtime, messages: int) -> None:
    rng = random.Random(13)
    states, weights = list(STATES), list(STATES.values())
    with transaction(runtime.session_factory) as session:
        targets = []
        for name in CHANNELS:
            channel = create_channel(session, name=name, provider="kolmeya_sandbox", credentials={"token": "t"})
            session.flush()
            first = queue_outbound(session, channel=channel, phone="+55 11 90000-0001", body="Olá", origin="api",
                                   audit=False)
            session.flush()
            targets.append((channel.id, first.conversation_id))
    now = utcnow()
    started = time.perf_counter()
    seed = []
    for _ in range(min(SEED, messages)):
        channel_id, conversation_id = targets[rng.randrange(len(targets))]
        row = rows.outbound(SMS, channel_id=channel_id, conversation_id=conversation_id, contact=None,
                            origin="campaign", phone="+55 11 90000-0001", phone_e164="+5511900000001",
                            body="Olá, sua fatura vence amanhã.", now=now)
        row["status"] = rng.choices(states, weights)[0]
        seed.append(row)
    with transaction(runtime.session_factory) as session:
        session.execute(insert(Message), seed)
    # Then the table copies itself (new references) until it holds `messages`: SQL speed, same mix.
    columns = [column.name for column in Message.__table__.columns if column.name not in ("id", "reference")]
    made = len(seed)
    while made < messages:
        copy = min(made, messages - made)
        with transaction(runtime.session_factory) as session:
            session.execute(text(
                f"INSERT INTO messages (reference, {', '.join(columns)}) SELECT 'c{made}-' || id, "
                f"{', '.join(columns)} FROM messages "
                f"WHERE id > {len(targets)} ORDER BY id LIMIT {copy}"))
        made += copy
    print(f"built {made:,} messages in {time.perf_counter() - started:.1f} s")


def timed(function, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(_env_file=None, data_dir=Path(data_dir), log_level="WARNING",
                            database_url=args.database_url)
        runtime = build_runtime(settings)
        build(runtime, args.messages)
        backend = runtime.engine.url.get_backend_name()

        uncached = DatabaseCollector(runtime.engine, runtime.jobs, cache_seconds=0)
        read = timed(uncached.figures, args.rounds)
        observability = Observability(runtime)
        observability.exposition()  # the first scrape reads; the next ones within CACHE_SECONDS do not
        cached = timed(observability.exposition, args.rounds)
        total = sum(row[-1] for row in uncached.figures().messages.by_state)
        assert total == args.messages + len(CHANNELS), total
        # The baseline: every state by channel, which has to read every row of the table.
        every_row = select(Message.channel_id, Message.status, func.count()).group_by(Message.channel_id,
                                                                                       Message.status)
        with runtime.engine.connect() as connection:
            baseline = timed(lambda: connection.execute(every_row).all(), max(1, args.rounds // 2))
        print(f"{backend}, {total:,} messages: scrape that reads the database "
              f"p50 {statistics.median(read) * 1000:.0f} ms, max {max(read) * 1000:.0f} ms; "
              f"scrape within the cache p50 {statistics.median(cached) * 1000:.1f} ms, "
              f"max {max(cached) * 1000:.1f} ms ({args.rounds} rounds each); counting every state by channel "
              f"instead: p50 {statistics.median(baseline) * 1000:.0f} ms ({len(baseline)} rounds), "
              f"{statistics.median(baseline) / statistics.median(read):.1f}× the scrape's read")


if __name__ == "__main__":
    main()
