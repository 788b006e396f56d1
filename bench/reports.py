"""Report pages on a big database: 1M messages, 100k conversations, 50 operators over 90 days, on
a fresh SQLite file (the embedded default) or an empty PostgreSQL database, built with bulk inserts
after the migrations.

    uv run python bench/reports.py [--messages 1000000] [--conversations 100000] [--operators 50]
                                   [--requests 30] [--keep DIR] [--postgres URL]

Each report page (GET /reports/<name>, as a logged-in supervisor, through the whole app: session,
queries, SVG, HTML) is asked `--requests` times, over the default period (the last 30 days) and
with each filter in turn (a channel, a campaign, an operator; 90 days), and its server time is
timed in the process. Goal: p99 ≤ 300 ms for every page.

Every figure is made up: numbers +55 11 9xxxx-xxxx, operators "Operador N".
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

GOAL_P99_MS = 300
DAYS = 90
CAMPAIGNS = 60
STATUSES = (("delivered", 60), ("read", 15), ("sent", 10), ("failed", 7), ("blocked", 3), ("expired", 2),
            ("rejected", 1), ("queued", 2))
REASONS = ("número inválido", "operadora recusou", "sem cobertura", "mensagem expirou na operadora",
           "not sent: the contact opted out of SMS")


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class Target:
    """Where the bench builds and measures: a fresh SQLite file (the embedded default) or a
    PostgreSQL database (`--postgres URL`), written through the driver with the same SQL."""

    def __init__(self, directory: Path, postgres: str | None):
        self.postgres = postgres
        self.path = directory / "contact-center.db"
        self.url = postgres or f"sqlite:///{self.path}"

    def built(self) -> bool:
        if not self.postgres:
            return self.path.exists()
        from sqlalchemy import create_engine, inspect, text

        engine = create_engine(self.postgres)
        try:
            with engine.connect() as connection:
                return ("messages" in inspect(connection).get_table_names()
                        and connection.execute(text("SELECT count(*) FROM messages")).scalar() > 0)
        finally:
            engine.dispose()

    def connect(self):
        """A DB-API connection taking `?` placeholders on both databases, in UTC."""
        if not self.postgres:
            db = sqlite3.connect(self.path)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            return db
        import psycopg

        return _Postgres(psycopg.connect(self.postgres.replace("+psycopg", ""), options="-c TimeZone=UTC"))


class _Postgres:
    def __init__(self, connection):
        self.connection = connection

    def executemany(self, sql: str, rows) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    def execute(self, sql: str, params=()) -> None:
        self.connection.execute(sql.replace("?", "%s"), params)

    def commit(self) -> None:
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()


def build(target: Target, messages: int, conversations: int, operators: int, seed: int = 13) -> dict:
    """The database: migrated by the product, then filled by executemany (minutes by the ORM); the
    report triggers keep the roll-ups as the rows go in, as they would in use."""
    from contact_center.db import make_engine
    from contact_center.migrations import upgrade

    engine = make_engine(target.url)
    upgrade(engine)
    engine.dispose()
    json_value = "CAST(? AS JSON)" if target.postgres else "?"
    rng = random.Random(seed)
    now = datetime.now(UTC)
    begin = now - timedelta(days=DAYS)
    db = target.connect()
    stamp = _ts(now)
    from contact_center.auth.service import hash_password

    password = hash_password("bench password")
    db.executemany("INSERT INTO users (id, username, name, role, password_hash, active, created_at) "
                   "VALUES (?, ?, ?, ?, ?, TRUE, ?)",
                   [(i, f"op{i}", f"Operador {i}", "supervisor" if i == 1 else "agent", password, stamp)
                    for i in range(1, operators + 1)])
    db.executemany("INSERT INTO channels (id, name, kind, provider, active, credentials, settings, created_at, "
                   "updated_at, webhook_secret) VALUES (?, ?, 'sms', 'kolmeya_sandbox', TRUE, '{}', '{}', ?, ?, ?)",
                   [(1, "SMS Principal", stamp, stamp, "s1"), (2, "SMS Cobrança", stamp, stamp, "s2")])
    db.executemany("INSERT INTO templates (id, name, body, created_at, updated_at) VALUES (?, ?, 'Olá', ?, ?)",
                   [(i, f"Modelo {i}", stamp, stamp) for i in range(1, 11)])
    db.executemany("INSERT INTO campaigns (id, name, channel_id, template_id, body_template, status, "
                   "start_when_built, total, skipped, cancelled, created_by_id, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, 'Olá', 'completed', FALSE, 0, 0, 0, ?, ?, ?)",
                   [(i, f"Campanha {i}", 1 + i % 2, 1 + i % 10, 1 + i % operators, stamp, stamp)
                    for i in range(1, CAMPAIGNS + 1)])
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    per_conversation = messages // conversations  # 6 from campaigns, 2 from the customer, 2 from operators
    message_id, event_id = 0, 0
    message_rows, conversation_rows, event_rows = [], [], []

    def flush():
        # Conversations first, as in use: the report triggers find them when their messages go in.
        db.executemany("INSERT INTO conversations (id, channel_id, phone_e164, phone_key, status, assignee_id, "
                       "unread_count, last_activity_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                       conversation_rows)
        db.executemany(
            "INSERT INTO messages (id, reference, channel_id, conversation_id, campaign_id, author_id, direction, "
            "origin, phone, phone_e164, body, content_type, status, status_reason, status_inferred, segments, "
            "attempts, in_reply_to_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'texto', "
            "'text', ?, ?, FALSE, 1, 1, ?, ?, ?)", message_rows)
        db.executemany("INSERT INTO conversation_events (id, conversation_id, kind, at, actor_id) "
                       "VALUES (?, ?, ?, ?, ?)", event_rows)
        message_rows.clear(), conversation_rows.clear(), event_rows.clear()

    for c in range(1, conversations + 1):
        channel = 1 + c % 2
        phone = f"+55119{c:08d}"[:14]
        opened = begin + timedelta(seconds=rng.randrange(DAYS * 86400 - 8 * 3600))
        first_campaign_message = None
        at = opened
        for k in range(per_conversation):
            message_id += 1
            role = "campaign" if k < per_conversation - 4 else ("in" if k % 2 == 0 else "operator")
            if role == "campaign":
                status = rng.choice(statuses)
                reason = rng.choice(REASONS[:4]) if status in ("failed", "expired", "rejected") else (
                    REASONS[4] if status == "blocked" else None)
                message_rows.append((message_id, f"r{message_id}", channel, c, rng.randrange(1, CAMPAIGNS + 1),
                                     None, "out", "campaign", phone, phone, status, reason, None, _ts(at), _ts(at)))
                first_campaign_message = first_campaign_message or message_id
                at += timedelta(minutes=rng.randrange(1, 60))
            elif role == "in":
                reply_to = first_campaign_message if rng.random() < 0.5 else None
                message_rows.append((message_id, f"r{message_id}", channel, c, None, None, "in", "webhook", phone,
                                     phone, "received", None, reply_to, _ts(at), _ts(at)))
                at += timedelta(minutes=rng.randrange(1, 120))
            else:
                message_rows.append((message_id, f"r{message_id}", channel, c, None, rng.randrange(1, operators + 1),
                                     "out", "composer", phone, phone, "delivered", None, None, _ts(at), _ts(at)))
                at += timedelta(minutes=rng.randrange(1, 30))
        closed = rng.random() < 0.8
        status = "done" if closed else rng.choice(("new", "assigned"))
        conversation_rows.append((c, channel, phone, f"k{c}", status,
                                  rng.randrange(1, operators + 1) if status != "new" else None, _ts(at), _ts(opened)))
        if closed:
            event_id += 1
            event_rows.append((event_id, c, "closed", _ts(at + timedelta(minutes=5)), rng.randrange(1, operators + 1)))
        if len(message_rows) >= 50_000:
            flush()
    flush()
    # The audit log as it grows: one entry a send, and the opt-outs among them.
    audit = []
    for i in range(200_000):
        when = _ts(begin + timedelta(seconds=rng.randrange(DAYS * 86400)))
        if i % 50 == 0:
            action, via, detail = rng.choice((("contact.opt_out_sms", "webhook", {"word": "SAIR"}),
                                              ("contact.opt_out_sms", "provider", {"reason": "blacklisted"}),
                                              ("contact.opt_out_whatsapp", "ui", {}),
                                              ("contact.opt_out_marketing", "webhook", {})))
        else:
            action, via, detail = "sms.send", "campaign", {"channel": "SMS Principal"}
        audit.append((when, via, action, "contact", i, json.dumps(detail), rng.randrange(1, operators + 1)))
    db.executemany("INSERT INTO audit_log (at, via, action, subject_type, subject_id, detail, actor_id) "
                   f"VALUES (?, ?, ?, ?, ?, {json_value}, ?)", audit)
    if target.postgres:  # the ids were given: the sequences go past them, as in use
        for table in ("users", "channels", "templates", "campaigns", "messages", "conversations",
                      "conversation_events"):
            db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    db.commit()
    if target.postgres:
        db.connection.autocommit = True
        db.execute("VACUUM ANALYZE")
    else:
        db.execute("ANALYZE")
    db.close()
    return {"messages": message_id, "conversations": conversations, "events": event_id}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def measure(target: Target, requests: int) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient

    from contact_center.app import create_app
    from contact_center.runtime import build_runtime, freeze_startup_heap
    from contact_center.settings import Settings

    settings = Settings(data_dir=target.path.parent, database_url=target.url, secret_key="bench-secret-0123456789",
                        webhook_writer_process=False, _env_file=None)
    runtime = build_runtime(settings)
    end = datetime.now(UTC).date()
    wide = f"start={end - timedelta(days=DAYS - 1)}&end={end}"
    variants = ["", "channel=1", "campaign=7", "operator=3", wide]
    timings: dict[str, list[float]] = {}
    app = create_app(runtime)
    freeze_startup_heap()  # as `serve` does
    with TestClient(app) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"username": "op1", "password": "bench password", "csrf_token": token,
                                    "next": "/inbox"})
        for name in ("messages", "replies", "conversations", "opt_outs"):
            assert client.get(f"/reports/{name}").status_code == 200  # warm the page cache once
            for n in range(requests):
                variant = variants[n % len(variants)]
                started = time.perf_counter()
                answer = client.get(f"/reports/{name}?{variant}")
                elapsed = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, answer.text[:300]
                timings.setdefault(name, []).append(elapsed)
                timings.setdefault(f"{name} [{variant.split('=')[0] or 'last 30 days'}]", []).append(elapsed)
    return timings


REPORT_TRIGGERS = ("report_message_inserted", "report_reply_inserted", "report_conversation_opened",
                   "report_customer_wrote", "report_operator_wrote")


def reply_path(directory: Path, replies: int, rounds: int, batch: int = 16) -> dict[str, list[float]]:
    """What the triggers add to a reply's write, the webhook writer's own work: the same batches of
    `batch` replies through messaging.inbound.record_replies and a commit, into two fresh copies of
    one database, with and without the report triggers, alternating round by round (ABAB) in this
    process. Each reply is from a new customer (a conversation opens) and half answer a campaign
    message (a reply to count). µs of wall time per reply, per round."""
    import shutil

    from contact_center.db import make_engine, make_session_factory
    from contact_center.messaging.inbound import ReplyIn, record_replies
    from contact_center.migrations import upgrade
    from contact_center.providers.base import InboundReply

    base = directory / "replies-base.db"
    engine = make_engine(f"sqlite:///{base}")
    upgrade(engine)
    engine.dispose()
    db = sqlite3.connect(base)
    stamp = _ts(datetime.now(UTC))
    db.execute("INSERT INTO channels (id, name, kind, provider, active, credentials, settings, created_at, updated_at, "
               "webhook_secret) VALUES (1, 'SMS', 'sms', 'kolmeya_sandbox', 1, '{}', '{}', ?, ?, 's')", (stamp, stamp))
    db.execute("INSERT INTO campaigns (id, name, channel_id, body_template, status, start_when_built, total, skipped, "
               "cancelled, created_at, updated_at) VALUES (1, 'C', 1, 'x', 'completed', 0, 0, 0, 0, ?, ?)", (stamp, stamp))
    total = replies * rounds
    db.executemany("INSERT INTO conversations (id, channel_id, phone_e164, phone_key, status, unread_count, "
                   "last_activity_at, created_at) VALUES (?, 1, ?, ?, 'done', 0, ?, ?)",
                   [(i, f"+55119{i:08d}", f"old{i}", stamp, stamp) for i in range(1, total + 1)])
    db.executemany("INSERT INTO messages (reference, channel_id, conversation_id, campaign_id, direction, origin, "
                   "phone, phone_e164, body, content_type, status, status_inferred, segments, attempts, created_at, "
                   "updated_at) VALUES (?, 1, ?, 1, 'out', 'campaign', ?, ?, 'x', 'text', 'delivered', 0, 1, 1, ?, ?)",
                   [(f"camp{i}", i, f"+55119{i:08d}", f"+55119{i:08d}", stamp, stamp) for i in range(1, total + 1)])
    db.commit()
    db.close()
    copies = {}
    for label in ("with triggers", "without"):
        path = directory / f"replies-{label.replace(' ', '-')}.db"
        shutil.copy(base, path)
        if label == "without":
            plain = sqlite3.connect(path)
            for name in REPORT_TRIGGERS:
                plain.execute(f"DROP TRIGGER {name}")
            plain.commit()
            plain.close()
        engine = make_engine(f"sqlite:///{path}")
        copies[label] = (engine, make_session_factory(engine))
    timings: dict[str, list[float]] = {label: [] for label in copies}
    for n in range(rounds):
        for label in (("with triggers", "without") if n % 2 == 0 else ("without", "with triggers")):
            _, factory = copies[label]
            first = n * replies
            started = time.perf_counter()
            for start in range(first, first + replies, batch):
                items = [ReplyIn("kolmeya.reply", 1, InboundReply(
                    external_id=f"{label}-{i}", phone=f"+55 21 9{i // 10000:04d}-{i % 10000:04d}", text="Oi, já paguei",
                    received_at=datetime.now(UTC), in_reply_to_reference=f"camp{i + 1}" if i % 2 else None,
                    in_reply_to_provider_id=None), payload="{}") for i in range(start, min(first + replies,
                                                                                           start + batch))]
                with factory() as session:
                    record_replies(session, items)
                    session.commit()
            timings[label].append((time.perf_counter() - started) / replies * 1e6)
    for engine, _ in copies.values():
        engine.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30, help="per report page, across the filter variants")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the database in this directory")
    parser.add_argument("--replies", type=int, default=4000, help="replies a round in the reply-path measurement")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each (ABAB) in the reply-path measurement")
    parser.add_argument("--only", choices=("pages", "replies"), help="run one of the two measurements")
    parser.add_argument("--postgres", metavar="URL", help="build (or reuse) the report pages' database in this "
                        "PostgreSQL database (an empty one, e.g. postgresql+psycopg://postgres@127.0.0.1/bench)")
    args = parser.parse_args()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="cc-reports-"))
    directory.mkdir(parents=True, exist_ok=True)
    target = Target(directory, args.postgres)
    met = True
    if args.only != "pages":
        costs = reply_path(directory, args.replies, args.rounds)
        with_triggers, without = (statistics.median(costs[k]) for k in ("with triggers", "without"))
        print(f"reply write path (record_replies + commit, batches of 16), µs a reply, median of {args.rounds} rounds "
              f"each: with the report triggers {with_triggers:.0f}, without {without:.0f} "
              f"(+{(with_triggers / without - 1) * 100:.0f} %); rounds: "
              + ", ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(costs["with triggers"], costs["without"])), flush=True)
    if args.only == "replies":
        sys.exit(0)
    if not target.built():
        started = time.perf_counter()
        built = build(target, args.messages, args.conversations, args.operators)
        print(f"built {built['messages']:,} messages, {built['conversations']:,} conversations, "
              f"{built['events']:,} closes in {time.perf_counter() - started:.0f} s "
              f"({target.postgres or target.path})", flush=True)
    timings = measure(target, args.requests)
    print(f"\nreport page server time, ms ({args.requests} requests a page; goal p99 ≤ {GOAL_P99_MS} ms)")
    print(f"{'page':42} {'p50':>8} {'p99':>8} {'max':>8}")
    for name, values in timings.items():
        p99 = percentile(values, 0.99)
        if "[" not in name:
            met &= p99 <= GOAL_P99_MS
        print(f"{name:42} {statistics.median(values):8.1f} {p99:8.1f} {max(values):8.1f}")
    print(f"\ngoal {'met' if met else 'NOT met'}: every page's p99 ≤ {GOAL_P99_MS} ms")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
