"""CONTACT_CENTER_LOG_FORMAT=json: one JSON object per line, with the request id, the call's extra
fields and the exception; secrets (the metrics token, a channel's webhook token) never appear."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import pytest

from contact_center.logs import configure_logging, register_secret
from contact_center.settings import SettingsError, load_settings

TOKEN = "json-logs-scrape-token-0001"


@pytest.fixture
def json_logs():
    """Logging switched to JSON for the test; lines() -> every line written since, parsed."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "json")
    written = io.StringIO()
    root.handlers[0].setStream(written)  # the handler configure_logging made, writing here instead of stderr

    def lines() -> list[dict]:
        return [json.loads(line) for line in written.getvalue().splitlines()]

    yield lines
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.mark.live_settings(metrics_token=TOKEN)
def test_request_lines_carry_the_request_id_and_no_token(live, json_logs):
    register_secret(TOKEN)  # as open_database does for the configured token
    access = logging.getLogger("uvicorn.access")
    access_level = access.level
    access.setLevel(logging.INFO)  # the live server logs warnings only; `serve` logs every request
    wrong = "Bearer wrong-scrape-token-777"
    answer = live.http.get("/metrics", headers={"Authorization": wrong, "X-Request-ID": "req-42.a"})
    assert answer.status_code == 401 and answer.headers["x-request-id"] == "req-42.a"
    unnamed = live.http.get("/metrics?token=" + TOKEN)  # a token pasted in the URL instead
    assert unnamed.status_code == 401
    generated = unnamed.headers["x-request-id"]

    sent = live.http.post("/api/sms", json={"to": "+55 11 90000-0001", "body": "Olá"}, headers=live.headers).json()
    live.wait_for(lambda: live.message(sent["id"])["status"] in ("sent", "delivered"), what="sent")
    access.setLevel(access_level)
    lines = json_logs()

    refused = [line for line in lines if line["logger"] == "contact_center.metrics.api"]
    assert [line["request_id"] for line in refused] == ["req-42.a", generated]
    for line in refused:
        assert line["level"] == "WARNING" and "refused a scrape from 127.0.0.1" in line["message"]
        assert datetime.fromisoformat(line["time"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    batch = [line for line in lines if line["logger"] == "contact_center.messaging.dispatch"
             and "sent batch" in line["message"]]
    assert batch and batch[0]["channel"] == "SMS SANDBOX" and batch[0]["batch_reference"]
    assert "request_id" not in batch[0]  # a job, not a request
    urls = [line["message"] for line in lines if line["logger"] == "uvicorn.access" and "/metrics" in line["message"]]
    assert any("/metrics?token=*** " in url for url in urls), urls
    everything = "\n".join(json.dumps(line) for line in lines)
    assert TOKEN not in everything and "wrong-scrape-token" not in everything
    assert live.tokens["ana"] not in everything


def test_exceptions_are_a_field_and_secrets_are_blanked_in_them(json_logs):
    register_secret("channel-secret-4242")
    try:
        raise RuntimeError("provider refused token channel-secret-4242")
    except RuntimeError:
        logging.getLogger("contact_center.tests").exception("send failed for %s", "channel-secret-4242",
                                                            extra={"message_id": 17, "channel": "SMS"})
    [line] = json_logs()
    assert line["message"] == "send failed for ***"
    assert (line["message_id"], line["channel"], line["level"]) == (17, "SMS", "ERROR")
    assert line["exception"].startswith("Traceback") and "RuntimeError: provider refused token ***" in line["exception"]
    assert "channel-secret-4242" not in json.dumps(line)


def test_text_stays_the_default_and_a_typo_is_named():
    assert load_settings(_env_file=None).log_format == "text"
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, log_format="yaml")
    assert "CONTACT_CENTER_LOG_FORMAT" in str(refused.value) and "text ou json" in str(refused.value)
