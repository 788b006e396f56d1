"""The real server (uvicorn on a port) keeps answering while hostile templates are being refused:
renders run in request threads, and each stops at its budget."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.templates.hostile import CPU_SECONDS, HOSTILE

pytestmark = pytest.mark.live_settings(template_cpu_seconds=CPU_SECONDS)

BODIES = {name: (source, words) for name, source, _, words in HOSTILE
          if name in ("power", "repeat", "nested-range-loops", "recursive-macro")}


@pytest.mark.parametrize("name", list(BODIES))
def test_healthz_answers_while_a_hostile_preview_is_refused(live, name):
    source, words = BODIES[name]
    template = live.http.post("/api/templates", json={"name": "T", "body": "Oi {{ contact.first_name }}"},
                              headers=live.headers)
    assert template.status_code == 201, template.text
    answer = {}

    def preview():
        started = time.perf_counter()
        response = httpx.post(f"{live.base_url}/api/templates/{template.json()['id']}/preview",
                              json={"body": source}, headers=live.headers, timeout=30)
        answer.update(response=response, elapsed=time.perf_counter() - started)

    thread = threading.Thread(target=preview)
    latencies = []
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        http.get("/healthz").raise_for_status()  # a warm connection: measure the server, not the handshake
        thread.start()
        while thread.is_alive() or len(latencies) < 5:
            started = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
    thread.join()

    response = answer["response"]
    assert response.status_code == 422, response.text
    assert words in response.json()["error"]["message"]
    # The budget is CPU time; wall time on a loaded 2-core machine, beside the /healthz loop, runs a
    # few times longer. Unstopped, these templates run for minutes.
    assert answer["elapsed"] < 2.0, f"the preview took {answer['elapsed']:.2f} s"
    assert max(latencies) < 0.3, f"/healthz took up to {max(latencies) * 1000:.0f} ms ({len(latencies)} calls)"
    print(f"{name}: preview {answer['elapsed'] * 1000:.0f} ms, /healthz max {max(latencies) * 1000:.0f} ms "
          f"over {len(latencies)} calls")
