"""GET /metrics on the running product: the figures move with what happens (sends through the
Kolmeya sandbox, good and bad callbacks, provider errors, a paused queue, a live stream), and only
who may read them gets them."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.web.test_live_events import EventStream

TOKEN = "scrape-token-0123456789"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
SMS = {"channel": "SMS SANDBOX", "kind": "sms"}  # the live product's channel
pytestmark = pytest.mark.live_settings(metrics_token=TOKEN)


def scrape(live) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics, by (name, labels)."""
    response = live.http.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _sms(live, to: str) -> dict:
    sent = live.http.post("/api/sms", json={"to": to, "body": "Sua fatura vence amanhã"}, headers=live.headers)
    assert sent.status_code == 202, sent.text
    return sent.json()


def test_sends_and_callbacks_move_the_figures(live):
    before = scrape(live)
    messages = [_sms(live, "+55 11 90000-0001"), _sms(live, "+55 11 90000-0002")]
    for message in messages:
        live.wait_for(lambda m=message: live.message(m["id"])["status"] == "delivered", what="delivered")

    # The database's totals: exact, as this database is new (read at most CACHE_SECONDS late).
    after = live.wait_for(lambda: (s := scrape(live)) and value(
        s, "contact_center_messages", **SMS, state="delivered") == 2 and s, what="2 delivered in /metrics")
    assert value(after, "contact_center_dispatch_waiting_messages") == 0
    assert value(after, "contact_center_metrics_source_up", source="database") == 1
    assert value(after, "contact_center_metrics_source_up", source="queue") == 1
    # This process's counters: what it did since the first scrape.
    assert moved(before, after, "contact_center_dispatch_latency_seconds_count",
                 kind="sms", provider="kolmeya_sandbox") == 2
    assert value(after, "contact_center_dispatch_latency_seconds_sum", kind="sms", provider="kolmeya_sandbox") > 0
    status_callbacks = moved(before, after, "contact_center_webhook_callbacks_received_total",
                             provider="kolmeya", endpoint="POST /kolmeya/webhook/status")
    assert status_callbacks >= 1  # the sandbox reports sent and delivered, one callback or more
    assert moved(before, after, "contact_center_http_request_duration_seconds_count",
                 method="POST", route="/api/sms", status="202") == 2
    # Routes by their template: the message ids never become series of their own.
    assert moved(before, after, "contact_center_http_request_duration_seconds_count",
                 method="GET", route="/api/messages/{message_id}", status="200") >= 2
    assert not [key for key in after if "route" in dict(key[1]) and str(messages[0]["id"]) in dict(key[1])["route"]]

    # Bad callbacks: counted as received and as rejected, by reason.
    before = after
    assert live.http.post("/kolmeya/webhook/reply?token=not-a-channel-token", json={}).status_code == 401
    assert live.http.post(live.reply_url, content=b"{not json", headers={"Content-Type": "application/json"}
                          ).status_code == 422
    after = scrape(live)
    reply = {"provider": "kolmeya", "endpoint": "POST /kolmeya/webhook/reply"}
    assert moved(before, after, "contact_center_webhook_callbacks_received_total", **reply) == 2
    assert moved(before, after, "contact_center_webhook_callbacks_rejected_total", **reply,
                 reason="not_authenticated") == 1
    assert moved(before, after, "contact_center_webhook_callbacks_rejected_total", **reply,
                 reason="invalid_payload") == 1
    assert moved(before, after, "contact_center_http_request_duration_seconds_count",
                 method="POST", route="/kolmeya/webhook/reply", status="401") == 1

    # A good reply: received, not rejected.
    before = after
    live.sandbox.reply("5511900000001", "Já paguei", reference=messages[0]["reference"])
    after = live.wait_for(lambda: (s := scrape(live)) and moved(
        before, s, "contact_center_webhook_callbacks_received_total", **reply) == 1 and s, what="the reply counted")
    assert moved(before, after, "contact_center_webhook_callbacks_rejected_total", **reply,
                 reason="invalid_payload") == 0
    live.wait_for(lambda: value(scrape(live), "contact_center_messages", **SMS, state="received") == 1,
                  what="the reply among the messages")


def test_provider_errors_are_counted_by_code(live):
    before = scrape(live)
    # Only the send takes it: the reply poller's calls to the sandbox run meanwhile.
    live.sandbox.configure(fail_next=[429], fail_only=["/sms/store"])
    message = _sms(live, "+55 11 90000-0003")
    after = live.wait_for(lambda: (s := scrape(live)) and moved(
        before, s, "contact_center_provider_errors_total", provider="kolmeya_sandbox", operation="send",
        code="http_429") == 1 and s, what="the 429 counted")
    assert moved(before, after, "contact_center_dispatch_latency_seconds_count",
                 kind="sms", provider="kolmeya_sandbox") == 0  # refused: not handed over (yet)
    assert live.message(message["id"])["status"] == "queued"  # waits for its retry


def test_provider_errors_outside_a_send_are_counted_too(live):
    # A channel's status check that meets Kolmeya's 503: counted under the call that failed.
    before = scrape(live)
    live.sandbox.configure(fail_next=[503], fail_only=["/sms/balance"])
    status = live.http.get(f"/api/channels/{live.channel_id}/status", headers=live.headers)
    assert status.status_code == 200 and status.json()["ok"] is False, status.text
    after = scrape(live)
    assert moved(before, after, "contact_center_provider_errors_total", provider="kolmeya_sandbox",
                 operation="balance", code="http_503") == 1
    assert moved(before, after, "contact_center_provider_errors_total", provider="kolmeya_sandbox",
                 operation="send", code="http_503") == 0


def test_queue_depth_while_dispatch_is_stopped(live):
    live.pause_dispatch()
    for phone in ("+55 11 90000-0004", "+55 11 90000-0005", "+55 11 90000-0006"):
        _sms(live, phone)
    waiting = live.wait_for(lambda: (s := scrape(live)) and value(
        s, "contact_center_dispatch_waiting_messages") == 3 and s, what="3 waiting")
    assert value(waiting, "contact_center_messages_in_flight", channel="SMS SANDBOX", kind="sms", state="queued") == 3
    assert value(waiting, "contact_center_messages", **SMS, state="queued") == 3
    assert value(waiting, "contact_center_job_queue_tasks", queue="urgent", state="pending") == 3
    assert value(waiting, "contact_center_dispatch_oldest_waiting_seconds") >= 0

    live.resume_dispatch()
    drained = live.wait_for(lambda: (s := scrape(live)) and value(
        s, "contact_center_dispatch_waiting_messages") == 0 and s, what="the queue drained")
    # Sent or delivered now: no longer in flight on any channel.
    assert not [key for key in drained if key[0] == "contact_center_messages_in_flight"
                and dict(key[1])["state"] in ("queued", "sending")]
    assert value(drained, "contact_center_job_queue_tasks", queue="urgent", state="pending") == 0


def test_live_subscribers_count_open_streams_and_the_stream_still_streams(live):
    before = value(scrape(live), "contact_center_live_subscribers")
    stream = EventStream(live.base_url, live.headers)
    try:
        message = _sms(live, "+55 11 90000-0007")
        created = stream.next(("message.created",))  # events still flow through the latency middleware
        assert created["data"]["message_id"] == message["id"]
        assert stream.response.headers["x-request-id"]
        assert value(scrape(live), "contact_center_live_subscribers") == before + 1
    finally:
        stream.close()
    live.wait_for(lambda: value(scrape(live), "contact_center_live_subscribers") == before, what="the stream gone")


def _refused(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert "contact_center_" not in response.text and "python_gc" not in response.text
    error = response.json()["error"]
    for word in words:
        assert word in error["message"], error["message"]
    return error


def test_the_token_is_asked_for_and_checked(live):
    missing = live.http.get("/metrics")
    assert _refused(missing, 401, "Authorization: Bearer", "CONTACT_CENTER_METRICS_TOKEN")["code"] == "not_authenticated"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = live.http.get("/metrics", headers={"Authorization": "Bearer scrape-token-9999999999"})
    _refused(wrong, 401, "incorreto")
    assert "scrape-token" not in wrong.text
    _refused(live.http.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}), 401)
    english = live.http.get("/metrics", headers={"Accept-Language": "en-US,en;q=0.9"})
    _refused(english, 401, "Metrics need a token")
    assert live.http.get("/metrics", headers=SCRAPER).status_code == 200


@pytest.mark.live_settings(metrics_token=TOKEN, metrics_allow="10.0.0.0/8, 192.168.10.5")
def test_an_address_off_the_allow_list_is_refused_even_with_the_token(live):
    error = _refused(live.http.get("/metrics", headers=SCRAPER), 403, "127.0.0.1", "CONTACT_CENTER_METRICS_ALLOW")
    assert error["code"] == "forbidden"


@pytest.mark.live_settings(metrics_token="", metrics_allow="127.0.0.1")
def test_an_allowed_address_needs_no_token(live):
    assert live.http.get("/metrics").status_code == 200


@pytest.mark.live_settings(metrics_token="")
def test_with_neither_setting_this_machine_is_answered(live):
    assert live.http.get("/metrics").status_code == 200
