"""The webhook writer process `serve` uses: callbacks are recorded in a child process, the live
events they announce are published in the web process, and a child that dies is replaced."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import select

from contact_center.db import transaction
from contact_center.webhooks.models import WebhookEvent

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
    # A callback the dead child held would be answered 500 (the provider sends it again); the
    # ones after it are recorded by the new child.
    stored = live.wait_for(lambda: (answer := live.http.post(live.reply_url, json={
        "phone": "11 90000-0003", "message": "Quero negociar"})).status_code == 200 and answer.json(),
        what="a reply stored after the restart")
    assert stored["status"] == "success" and stored["sms_id"]
    [second] = writer_processes()
    assert second.pid != first.pid and second.is_alive()
