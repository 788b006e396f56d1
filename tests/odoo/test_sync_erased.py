"""An erased contact stays erased: the partner sync, full or incremental, skips the partner whose
contact an LGPD erasure blanked, counts it as skipped, and neither fills the tombstone again nor
makes a new contact of the person. A message the person sends us afterwards still becomes a new
contact (their own doing), and the sync leaves that one alone too. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from contact_center.channels.service import create_channel
from contact_center.contacts.models import Contact
from contact_center.db import transaction
from contact_center.odoo.sandbox import sample_partners
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.odoo.sync import read_state, sync_partners
from contact_center.privacy.erasure import erase_contact
from contact_center.providers.base import InboundReply


def erase(session_factory, settings, partner_id: int) -> int:
    with transaction(session_factory) as session:
        contact = session.scalar(select(Contact).where(Contact.odoo_partner_id == partner_id))
        erase_contact(session, contact.id, reason="Pedido da titular por e-mail, protocolo 2026-0007",
                      requested_by="A titular", settings=settings)
        return contact.id


def contacts_named(session_factory, text: str) -> list[Contact]:
    with transaction(session_factory) as session:
        return list(session.scalars(select(Contact).where(Contact.name.like(f"%{text}%"))))


def test_the_sync_skips_an_erased_partner_full_or_incremental(session_factory, odoo, odoo_config, settings):
    for partner in sample_partners(20):
        odoo.put(partner)
    first = sync_partners(session_factory, odoo_config)
    assert (first.created, first.skipped_erased) == (20, 0)
    erased_id = erase(session_factory, settings, 7)

    # The partner changes in Odoo: the incremental run reads it, skips it, and says so.
    odoo.put({**odoo.partners[7], "email": "nova7@example.com", "write_date": "2026-11-05 10:00:00"})
    odoo.put({**odoo.partners[8], "email": "nova8@example.com", "write_date": "2026-11-05 10:00:00"})
    incremental = sync_partners(session_factory, odoo_config)
    assert (incremental.read, incremental.updated, incremental.created, incremental.skipped_erased) == (2, 1, 0, 1)
    assert incremental.rejected_count == 0

    # --full reads every partner again: still skipped, nothing created.
    full = sync_partners(session_factory, odoo_config, full=True)
    assert (full.read, full.created, full.skipped_erased) == (20, 0, 1)
    with transaction(session_factory) as session:
        tombstone = session.get(Contact, erased_id)
        assert (tombstone.name, tombstone.odoo_partner_id) == (f"Contato apagado #{erased_id}", 7)
        assert tombstone.erased_at is not None
        assert [tombstone.phone, tombstone.mobile, tombstone.email, tombstone.document] == [None] * 4
        assert session.scalar(select(func.count()).select_from(Contact)) == 20
        assert read_state(session).last_skipped_erased == 1
    assert contacts_named(session_factory, "Cliente Teste 7") == []


def whatsapp_message(db, wa_id: str, text: str) -> int:
    """A WhatsApp message from `wa_id`, recorded as the webhook records it; the contact it reached."""
    channel = create_channel(db, name="WhatsApp", provider="whatsapp_sandbox",
                             credentials={"access_token": "t", "app_secret": "s"},
                             settings={"phone_number_id": "100", "waba_id": "200"})
    reply = InboundReply(external_id=f"wamid.{wa_id}", phone=wa_id, text=text, received_at=datetime.now(UTC),
                         in_reply_to_reference=None, in_reply_to_provider_id=None, identifiers={"wa_id": wa_id},
                         profile_name="De volta")
    [recorded] = record_replies(db, [ReplyIn("whatsapp.message", channel.id, reply, payload="{}", kind="whatsapp")])
    assert recorded.outcome == "applied", recorded
    return db.scalar(select(Message.contact_id).where(Message.id == recorded.message_id))


def test_a_message_after_the_erasure_is_a_new_contact_the_sync_does_not_fill(session_factory, db, odoo, odoo_config,
                                                                                settings):
    for partner in sample_partners(10):
        odoo.put(partner)
    sync_partners(session_factory, odoo_config)
    erase(session_factory, settings, 3)
    db.commit()

    # The person writes to us from the partner's mobile: a new contact, by their own doing.
    contact_id = whatsapp_message(db, "5511900000003", "Oi, sou eu de novo")
    db.commit()
    returned = db.get(Contact, contact_id)
    assert returned.erased_at is None and returned.odoo_partner_id is None
    assert returned.mobile_e164 == "+5511900000003"
    named_before = returned.name

    # Odoo still has the partner with that mobile: the sync must not merge it into the new contact.
    odoo.put({**odoo.partners[3], "write_date": "2026-11-05 10:00:00"})
    again = sync_partners(session_factory, odoo_config, full=True)
    assert (again.created, again.skipped_erased) == (0, 1)
    db.expire_all()
    returned = db.get(Contact, contact_id)
    assert (returned.name, returned.odoo_partner_id, returned.document, returned.email) == (named_before, None,
                                                                                              None, None)
    assert contacts_named(session_factory, "Cliente Teste 3") == []
