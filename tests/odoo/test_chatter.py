"""Chatter notes end to end: a reply from, and a send to, a contact synced from Odoo become notes
on its partner in the sandbox Odoo, by the post_odoo_notes job after the commit; Odoo being down
delays the notes (retried with growing waits) and never the message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from contact_center.contacts.models import Contact
from contact_center.db import transaction
from contact_center.messaging import service as messaging
from contact_center.messaging.dispatch import dispatch
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.odoo.chatter import MAX_ATTEMPTS, RETRY_DELAYS, post_notes
from contact_center.odoo.sync import sync_partners
from contact_center.privacy.erasure import erase_contact
from contact_center.providers.base import InboundReply
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from tests.odoo.conftest import config_for

STAMP = "2026-11-02 09:00:00"


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SANDBOX_TOKEN, status_delay_seconds=60, callback_attempts=1) as server:
        yield server


@pytest.fixture
def synced(session_factory, odoo):
    """Partner 42 (+55 11 90000-0042) synced to a contact; 43 is a customer Odoo does not know."""
    odoo.put({"id": 42, "name": "Maria Souza", "mobile": "(11) 90000-0042", "write_date": STAMP})
    sync_partners(session_factory, config_for(odoo))


def reply(session_factory, channel_id: int, phone: str, text: str, external_id: str) -> int:
    item = InboundReply(external_id=external_id, phone=phone, text=text, received_at=datetime(2026, 11, 2, 12, 30, tzinfo=UTC),
                        in_reply_to_reference=None, in_reply_to_provider_id=None)
    with transaction(session_factory) as session:
        [recorded] = record_replies(session, [ReplyIn("tests.reply", channel_id, item, payload="{}")])
    return recorded.message_id


def test_a_reply_and_a_send_become_notes_on_the_partner(runtime, session_factory, settings, channel, odoo, synced):
    reply(session_factory, channel.id, "5511900000042", "Oi, já paguei <a fatura>", "r-1")
    reply(session_factory, channel.id, "5511900000043", "Quem é?", "r-2")  # no partner: no note
    assert [n["partner_id"] for n in odoo.notes] == [42]
    note = odoo.notes[0]
    assert (note["message_type"], note["subtype_xmlid"]) == ("comment", "mail.mt_note")
    assert note["body"] == ("<p><b>SMS recebido de +5511900000042</b> 02/11/2026 12:30 UTC</p>"
                            "<p>Oi, já paguei &lt;a fatura&gt;</p>")

    with transaction(session_factory) as session:
        message = messaging.queue_outbound(session, channel=channel, phone="(11) 90000-0042",
                                           body="Recebemos, obrigado!", origin="api")
    assert len(odoo.notes) == 1  # queued is not sent
    dispatch(session_factory, settings, [message.id])
    assert [n["partner_id"] for n in odoo.notes] == [42, 42]
    assert "SMS enviado para +5511900000042" in odoo.notes[1]["body"]
    assert "Recebemos, obrigado!" in odoo.notes[1]["body"]


def test_odoo_down_never_fails_the_message_and_the_notes_are_retried(runtime, session_factory, channel, odoo,
                                                                     synced):
    odoo.go_away()  # every call goes unanswered
    message_id = reply(session_factory, channel.id, "(11) 90000-0042", "Pode ligar amanhã", "r-3")
    with transaction(session_factory) as session:
        assert session.get(Message, message_id).body == "Pode ligar amanhã"  # stored all the same
    assert odoo.notes == []
    [waiting] = runtime.jobs.huey.scheduled()
    assert waiting.name == "post_odoo_notes" and waiting.args == ([message_id], 2)

    config = config_for(odoo)
    run = post_notes(session_factory, config, [message_id], attempt=2)
    assert (run.retry, run.retry_after) == ([message_id], RETRY_DELAYS[1])
    odoo.come_back()
    run = post_notes(session_factory, config, [message_id], attempt=3)
    assert (run.posted, run.retry, run.retry_after) == ([message_id], [], None)
    assert len(odoo.notes) == 1


def test_notes_give_up_after_the_last_try_and_a_deleted_partner_is_skipped(runtime, session_factory, channel, odoo,
                                                                           synced, caplog):
    odoo.go_away()
    message_id = reply(session_factory, channel.id, "(11) 90000-0042", "Oi", "r-4")
    odoo.come_back()
    config = config_for(odoo, api_key="chave-errada-0000")
    run = post_notes(session_factory, config, [message_id], attempt=MAX_ATTEMPTS)
    assert (run.retry, run.retry_after) == ([], None)
    assert "gave up on the notes of message(s)" in caplog.text

    del odoo.partners[42]
    run = post_notes(session_factory, config_for(odoo), [message_id])
    assert (run.posted, run.retry) == ([], [])
    assert "partner 42 no longer exists" in caplog.text


def test_a_note_still_waiting_when_the_contact_is_erased_never_reaches_odoo(runtime, session_factory, settings,
                                                                            channel, odoo, synced):
    odoo.go_away()
    message_id = reply(session_factory, channel.id, "(11) 90000-0042", "Meu CPF é o de sempre", "r-5")
    odoo.come_back()
    with transaction(session_factory) as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.odoo_partner_id == 42))
        erase_contact(session, contact_id, reason="Pedido da titular, protocolo 2026-0042", requested_by="A titular",
                      settings=settings)
    run = post_notes(session_factory, config_for(odoo), [message_id], attempt=2)  # the retry of the note
    assert (run.posted, run.retry) == ([], [])
    assert odoo.notes == []
