"""GET /healthz names each part: the database, the job queue (and whether a consumer still beats),
Redis when configured; 503 when any of them fails, served by the running app over HTTP."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from huey import MemoryHuey
from prometheus_client.parser import text_string_to_metric_families

from contact_center.app import create_app
from contact_center.db import make_engine, make_session_factory
from contact_center.jobs import Jobs
from contact_center.metrics.health import HEARTBEAT_KEY, HEARTBEAT_STALE_SECONDS
from contact_center.runtime import Runtime, install
from contact_center.settings import Settings
from tests.live import ThreadedServer, free_port


def closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve(tmp_path):
    """serve(engine, **settings) -> the base URL of an app on `engine` with an in-memory queue."""
    servers = []

    def start(engine, jobs: Jobs | None = None, **options) -> str:
        settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="health-test-secret-key",
                            webhook_writer_process=False, **options)
        runtime = install(Runtime(settings=settings, engine=engine, session_factory=make_session_factory(engine),
                                  jobs=jobs or Jobs(MemoryHuey("health"))))
        port = free_port()
        server = ThreadedServer(create_app(runtime), port)
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop()


def test_every_part_ok_on_the_running_product(live):
    answer = live.http.get("/healthz")
    assert answer.status_code == 200, answer.text
    health = answer.json()
    assert (health["status"], health["database"], health["queue"]) == ("ok", "ok", "ok")
    assert "redis" not in health  # not configured
    assert health["checks"]["database"]["latency_ms"] >= 0
    consumer = health["checks"]["queue"]["consumer"]  # the consumer beat when it started
    assert consumer["last_heartbeat_seconds_ago"] < 60 and consumer["pid"] > 0


def test_redis_down_is_named(own_database, serve):
    base = serve(own_database, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    answer = httpx.get(f"{base}/healthz", timeout=10)
    assert answer.status_code == 503, answer.text
    health = answer.json()
    assert (health["status"], health["database"], health["queue"], health["redis"]) == ("error", "ok", "ok", "error")
    assert "ConnectionError" in health["checks"]["redis"]["reason"]
    assert health["checks"]["redis"]["reason"].startswith("sem resposta")


def test_database_down_is_named_and_metrics_still_answer(tmp_path, serve):
    engine = make_engine(f"postgresql+psycopg://postgres:s3cret-db-password@127.0.0.1:{closed_port()}/test")
    try:
        base = serve(engine)
        answer = httpx.get(f"{base}/healthz", timeout=10)
        assert answer.status_code == 503, answer.text
        health = answer.json()
        assert (health["database"], health["queue"]) == ("error", "ok")
        assert "OperationalError" in health["checks"]["database"]["reason"]
        assert "s3cret" not in answer.text

        scrape = httpx.get(f"{base}/metrics", timeout=10)  # from this machine, neither setting: answered
        assert scrape.status_code == 200
        up = {tuple(s.labels.values()): s.value for family in text_string_to_metric_families(scrape.text)
              for s in family.samples if s.name == "contact_center_metrics_source_up"}
        assert up == {("database",): 0.0, ("queue",): 1.0}
    finally:
        engine.dispose()


def test_a_consumer_that_stopped_beating_fails_the_queue(own_database, serve):
    huey = MemoryHuey("stale")
    huey.put(HEARTBEAT_KEY, {"at": time.time() - HEARTBEAT_STALE_SECONDS - 60, "host": "worker-1", "pid": 4242})
    base = serve(own_database, jobs=Jobs(huey))
    answer = httpx.get(f"{base}/healthz", timeout=10)
    assert answer.status_code == 503, answer.text
    health = answer.json()
    assert (health["database"], health["queue"]) == ("ok", "error")
    assert "worker-1" in health["checks"]["queue"]["reason"] and "4242" in health["checks"]["queue"]["reason"]

    huey.put(HEARTBEAT_KEY, {"at": time.time(), "host": "worker-1", "pid": 4242})  # it beats again
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
