"""The webhook writer process `serve` uses: callbacks are recorded in a child process, the live
events they announce are published in the web process, and a child that dies is replaced."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest
from sqlalchemy import select

from contact_center.channels import service as channels
from contact_center.db import transaction
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.runtime import build_runtime
from contact_center.settings import Settings
from contact_center.webhooks.models import WebhookEvent
from contact_center.webhooks.writer import WriterProcess
from tests.webhooks.test_writer import reply

pytestmark = pytest.mark.live_settings(webhook_writer_process=True)


def writer_processes() -> list:
    return [process for process in multiprocessing.active_children() if process.name == "webhook-writer"]


def test_an_sms_and_its_reply_go_through_the_writer_process(live):
    [writer] = writer_processes()
    published = []
    unsubscribe = live.runtime.events.subscribe(lambda _number, event: published.append(event))
    try:
        sent = live.http.post("/api/sms", json={"to": "(11) 90000-0001", "body": "Sua fatura venceu"},
                              headers=live.headers).json()
        # The sandbox's status callbacks are applied by the child.
        live.wait_for(lambda: live.message(sent["id"])["status"] == "delivered", what="delivered")
        live.sandbox.reply("5511900000001", "Já paguei", reference=sent["reference"])
        inbound = live.wait_for(lambda: next((m for m in live.http.get(
            "/api/messages", params={"conversation_id": sent["conversation_id"]}, headers=live.headers).json()
            if m["direction"] == "in"), None), what="the reply")
    finally:
        unsubscribe()
    assert inbound["body"] == "Já paguei"
    # What the child announced reached this process's subscribers (the operators' screens).
    assert any(event.kind == "message.created" and event.data["message_id"] == inbound["id"] for event in published)
    assert any(event.kind == "message.status" and event.data["message_id"] == sent["id"]
               and event.data["status"] == "delivered" for event in published)  # from a status callback
    assert writer_processes() == [writer]


def test_a_malformed_callback_is_refused_and_kept_by_the_writer_process(live):
    answer = live.http.post(live.reply_url, content=b'{"phone": "11 90000-0002", "message": ')
    assert answer.status_code == 422, answer.text
    with transaction(live.runtime.session_factory) as session:
        kept = session.scalars(select(WebhookEvent).where(WebhookEvent.outcome == "rejected")).all()
    assert [event.payload for event in kept] == ['{"phone": "11 90000-0002", "message": ']


def test_a_new_writer_process_replaces_one_that_died(live):
    [first] = writer_processes()
    first.kill()
    first.join(10)
    # Until the new child is up, a callback is answered 500 "send it again" (or waits for it);
    # once it is, the same callback is recorded.
    answers = []

    def send_again():
        answers.append(live.http.post(live.reply_url, json={"phone": "11 90000-0003", "message": "Quero negociar"}))
        return answers[-1].status_code == 200 and answers[-1].json()

    stored = live.wait_for(send_again, what="a reply stored after the restart")
    assert stored["status"] == "success" and stored["sms_id"]
    for answer in answers[:-1]:
        assert answer.status_code == 500 and "send it again" in answer.json()["error"]["message"]
    [second] = writer_processes()
    assert second.pid != first.pid and second.is_alive()


def test_stopping_lets_the_writer_process_finish_what_was_submitted(tmp_path):
    """Callbacks submitted in the same turn of the loop as stop() are still written and answered."""
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="writer-test-secret-key", log_level="WARNING")
    runtime = build_runtime(settings)
    with transaction(runtime.session_factory) as session:
        channel_id = channels.create_channel(session, name="SMS", provider="kolmeya_sandbox",
                                             credentials={"token": SANDBOX_TOKEN}).id
    published = []

    async def go():
        writer = WriterProcess(settings, published.extend)
        await writer.start()
        futures = [writer.submit(reply(channel_id, n)) for n in range(1, 4)]
        await writer.stop()
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        outcomes = asyncio.run(go())
    finally:
        runtime.engine.dispose()
    assert [getattr(o, "outcome", o) for o in outcomes] == ["applied"] * 3
    assert [event.kind for event in published] == ["message.created"] * 3
    assert writer_processes() == []


def test_a_writer_process_that_cannot_reach_the_database_stops_the_start_with_a_way_out(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="writer-test-secret-key", log_level="CRITICAL",
                        database_url="postgresql+psycopg://postgres@127.0.0.1:9/nowhere")  # nothing listens on 9

    async def go():
        await WriterProcess(settings, lambda events: None).start()

    with pytest.raises(RuntimeError) as failure:
        asyncio.run(go())
    message = str(failure.value)
    assert "webhook writer process exited with code 1" in message
    assert "CONTACT_CENTER_WEBHOOK_WRITER_PROCESS=false" in message
    assert writer_processes() == []
