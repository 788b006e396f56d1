"""An SMS from the API to the handset and back, through the real queue, sandbox and webhooks."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from contact_center.db import transaction
from contact_center.webhooks.models import WebhookEvent


def test_sms_goes_queued_sent_delivered_and_the_reply_lands_on_the_contact(live):
    contact = live.http.post("/api/contacts", json={"name": "Maria Souza", "mobile": "(48) 99191-0234"},
                             headers=live.headers).json()
    sent = live.http.post("/api/sms", json={"contact_id": contact["id"], "body": "Olá Maria, sua fatura venceu."},
                          headers=live.headers)
    assert sent.status_code == 202, sent.text
    message = sent.json()
    assert message["status"] == "queued" and message["segments"] == 1 and message["encoding"] == "UCS-2"

    delivered = live.wait_for(lambda: (m := live.message(message["id"]))["status"] == "delivered" and m,
                              what="delivered")
    assert delivered["sent_at"] and delivered["delivered_at"] and delivered["provider_message_id"]
    ledger = live.sandbox.ledger()
    assert [m["reference"] for m in ledger["messages"]] == [message["reference"]]
    assert ledger["messages"][0]["phone"] == "5548991910234"

    live.sandbox.reply("5548991910234", "Oi, já paguei", reference=message["reference"])
    inbound = live.wait_for(lambda: live.http.get("/api/messages", params={"contact_id": contact["id"]},
                                                  headers=live.headers).json()[0]["direction"] == "in"
                            and live.http.get("/api/messages", params={"contact_id": contact["id"]},
                                              headers=live.headers).json()[0], what="the reply")
    assert inbound["body"] == "Oi, já paguei"
    assert inbound["conversation_id"] == message["conversation_id"]


@pytest.mark.sandbox(duplicate_callback_probability=1.0, out_of_order_probability=1.0)
def test_duplicate_and_out_of_order_callbacks_end_delivered(live):
    sent = live.http.post("/api/sms", json={"to": "11 90000-0001", "body": "Teste"}, headers=live.headers).json()
    live.wait_for(lambda: live.message(sent["id"])["status"] == "delivered", what="delivered")
    with transaction(live.runtime.session_factory) as session:
        live.wait_for(lambda: session.scalar(select(func.count()).select_from(WebhookEvent)) >= 2, what="events")
    # Let the late 'sent' callbacks arrive; they must not move the message back.
    live.wait_for(lambda: len(live.sandbox.ledger()["callbacks"]) >= 4, what="all callbacks")
    assert live.message(sent["id"])["status"] == "delivered"


def test_bulk_send_through_the_running_product(live):
    for i in range(1, 31):
        live.http.post("/api/contacts", json={"name": f"Cliente {i}", "mobile": f"11 9{i:04d}-0000"},
                       headers=live.headers)
    started = live.http.post("/api/sms/bulk", json={"body": "Oi {{ contact.name }}", "search": "", "confirm": True},
                             headers=live.headers, timeout=30)
    assert started.status_code == 200, started.text
    campaign_id = started.json()["campaign_id"]
    progress = live.wait_for(
        lambda: (p := live.http.get(f"/api/campaigns/{campaign_id}", headers=live.headers).json())
        ["by_status"].get("delivered") == 30 and p, what="30 delivered")
    assert progress["total"] == 30
    assert len(live.sandbox.ledger()["messages"]) == 30
