"""A templated campaign through the Kolmeya sandbox on PostgreSQL + Redis, sent by one and then by
two `contact-center worker` processes: wall time from "start" to every message accepted by the
provider with each, and the speed-up.

    uv run python bench/campaign_scale_out.py [--recipients 100000] [--rounds 1] [--threads 4]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379/14]

A database `contact_center_bench` is created afresh on the PostgreSQL server (and dropped at the
end), and the Redis database given is flushed. The campaign is built before each run; the workers
are started, warmed up, and then the campaign is started. Runs go 1, 2, 2, 1 workers … (ABBA), so
drift on a noisy machine falls on both. Goal (the issue's): two workers ≥ 1.5× as fast as one.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import redis
from sqlalchemy import func, make_url, select

sys.path.insert(0, str(Path(__file__).parent))
from bulk_send import free_port, seed_contacts, start_sandbox  # noqa: E402
from campaign import TEMPLATE, wait_accepted  # noqa: E402

from contact_center.campaigns import service as campaigns  # noqa: E402
from contact_center.campaigns.windows import ALWAYS  # noqa: E402
from contact_center.channels.service import create_channel  # noqa: E402
from contact_center.db import transaction  # noqa: E402
from contact_center.messaging.models import Message  # noqa: E402
from contact_center.runtime import build_runtime  # noqa: E402
from contact_center.settings import Settings  # noqa: E402

DATABASE = "contact_center_bench"


def fresh_database(server_url: str) -> str:
    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname=url.database or "postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    return url.set(database=DATABASE).render_as_string(hide_password=False)


def drop_database(server_url: str) -> None:
    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname=url.database or "postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def start_workers(count: int, threads: int, env: dict, log_dir: Path) -> list[subprocess.Popen]:
    workers = []
    for n in range(count):
        log = open(log_dir / f"worker-{len(list(log_dir.iterdir()))}-{n}.log", "wb")
        workers.append(subprocess.Popen([sys.executable, "-m", "contact_center", "worker", "--threads", str(threads)],
                                        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    time.sleep(4)  # imported, connected, their start-up sweep done
    for worker in workers:
        if worker.poll() is not None:
            raise SystemExit(f"a worker stopped at start (exit {worker.returncode}); see {log_dir}")
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def run(runtime, settings, channel_id: int, workers: int, threads: int, env: dict, log_dir: Path, label: str) -> dict:
    with transaction(runtime.session_factory) as session:
        campaign_id = campaigns.create_campaign(
            session, name=f"bench {label}", channel_id=channel_id, body=TEMPLATE, template_id=None,
            audience={"search": ""}, user=None, settings=settings, send_window=ALWAYS).id
    campaigns.build(runtime.session_factory, settings, campaign_id)
    with runtime.session_factory() as session:
        expected = session.scalar(select(func.count()).where(Message.campaign_id == campaign_id,
                                                             Message.status == "scheduled"))
    processes = start_workers(workers, threads, env, log_dir)
    try:
        started = time.perf_counter()
        with transaction(runtime.session_factory) as session:
            campaigns.start(session, campaign_id, None, via="cli")
        runtime.jobs.pump_campaign(campaign_id)  # onto Redis: the workers take it
        wait_accepted(runtime, Message.campaign_id == campaign_id, expected, started)
        return {"workers": workers, "accepted": time.perf_counter() - started, "messages": expected}
    finally:
        stop_workers(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds: one worker and two workers, twice each")
    parser.add_argument("--threads", type=int, default=4, help="threads of each worker process")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    options = parser.parse_args()

    redis.Redis.from_url(options.redis).flushdb()
    database_url = fresh_database(options.postgres)
    port = free_port()
    sandbox = start_sandbox(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(_env_file=None, data_dir=Path(tmp), database_url=database_url,
                                redis_url=options.redis, log_level="WARNING", public_base_url="http://127.0.0.1:9")
            runtime = build_runtime(settings)  # applies the migrations
            with transaction(runtime.session_factory) as session:
                channel_id = create_channel(session, name="SMS SANDBOX", provider="kolmeya_sandbox",
                                            credentials={"token": "sandbox-token"},
                                            settings={"base_url": f"http://127.0.0.1:{port}/api/v1",
                                                      "max_requests_per_minute": 100_000}).id
                seed_contacts(session, options.recipients, random.Random(5))
            env = {**os.environ, "CONTACT_CENTER_DATABASE_URL": database_url, "CONTACT_CENTER_REDIS_URL": options.redis,
                   "CONTACT_CENTER_DATA_DIR": tmp, "CONTACT_CENTER_LOG_LEVEL": "WARNING",
                   "CONTACT_CENTER_SECRET_KEY": "campaign-scale-out-bench-key"}
            env.pop("CONTACT_CENTER_KOLMEYA_TOKEN", None)
            log_dir = Path(tmp) / "logs"
            log_dir.mkdir()
            results = []
            for round_ in range(options.rounds):
                for workers in (1, 2, 2, 1):
                    results.append(run(runtime, settings, channel_id, workers, options.threads, env, log_dir,
                                       f"round {round_} ({workers})"))
                    last = results[-1]
                    print(f"  {workers} worker(s)  {last['messages']:,} messages  all accepted {last['accepted']:5.1f} s",
                          flush=True)
            runtime.engine.dispose()
        ledger = httpx.get(f"http://127.0.0.1:{port}/_sandbox/ledger", timeout=120).json()
    finally:
        sandbox.terminate()
        sandbox.wait()
        drop_database(options.postgres)

    references = [m["reference"] for m in ledger["messages"]]
    print(f"the sandbox ledger holds {len(references):,} messages, {len(set(references)):,} distinct references")
    one = statistics.mean(r["accepted"] for r in results if r["workers"] == 1)
    two = statistics.mean(r["accepted"] for r in results if r["workers"] == 2)
    print("\n== scale-out summary (PostgreSQL + Redis) ==")
    print(f"start → all accepted   1 worker {one:6.1f} s   2 workers {two:6.1f} s   speed-up {one / two:.2f}×   "
          f"(goal >= 1.5×)")


if __name__ == "__main__":
    main()
