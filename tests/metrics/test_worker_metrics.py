"""`contact-center worker --metrics-port`: a worker process counts what it sends and serves its own
/metrics under the same rule as the web app's; its heartbeat reaches the web app's /healthz."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.live import database_url, free_port

TOKEN = "worker-scrape-token-0123"


def dispatched(text: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "contact_center_dispatch_latency_seconds_count"
               and sample.labels == {"kind": "sms", "provider": "kolmeya_sandbox"})


def test_a_worker_serves_its_own_figures_and_beats(live, tmp_path):
    live.pause_dispatch()  # from now on only the worker process sends
    port = free_port()
    env = {**os.environ, "CONTACT_CENTER_DATABASE_URL": database_url(live.runtime.engine),
           "CONTACT_CENTER_DATA_DIR": str(live.runtime.settings.data_dir), "CONTACT_CENTER_METRICS_TOKEN": TOKEN,
           "CONTACT_CENTER_SECRET_KEY": "live-test-secret-key", "CONTACT_CENTER_LOG_LEVEL": "WARNING"}
    env.pop("CONTACT_CENTER_REDIS_URL", None)
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "contact_center", "worker", "--threads", "1",
                                   "--metrics-port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        up = live.wait_for(lambda: _get(metrics), timeout=60, what="the worker's metrics port")
        assert up.status_code == 401 and "CONTACT_CENTER_METRICS_TOKEN" in up.json()["error"]["message"]
        assert "contact_center_" not in up.text
        wrong = httpx.get(metrics, headers={"Authorization": "Bearer nope-nope-nope"})
        assert wrong.status_code == 401 and "incorreto" in wrong.json()["error"]["message"]
        scraper = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"http://127.0.0.1:{port}/other", headers=scraper).status_code == 404

        # The web app's /healthz sees the worker's heartbeat (they share the queue's storage).
        live.wait_for(lambda: (live.http.get("/healthz").json()["checks"]["queue"]["consumer"] or {}).get("pid")
                      == worker.pid, what="the worker's heartbeat")

        before = dispatched(httpx.get(metrics, headers=scraper).text)
        web_before = dispatched(live.http.get("/metrics").text)  # this machine, no token on the web app
        sent = live.http.post("/api/sms", json={"to": "+55 11 90000-0001", "body": "Olá"}, headers=live.headers)
        assert sent.status_code == 202, sent.text
        live.wait_for(lambda: live.message(sent.json()["id"])["status"] in ("sent", "delivered"), timeout=30,
                      what="sent by the worker")
        after = httpx.get(metrics, headers=scraper)
        assert after.status_code == 200 and "process_cpu_seconds_total" in after.text
        assert dispatched(after.text) - before == 1  # counted where it was sent…
        assert dispatched(live.http.get("/metrics").text) == web_before  # …not in the web process
        assert "contact_center_messages{" not in after.text  # the database totals come from the web processes
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert TOKEN not in (tmp_path / "worker.log").read_text()


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        time.sleep(0.2)
        return None
