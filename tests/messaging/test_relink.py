"""`sms relink`: replies that came before their contact existed are attached once it does."""

from __future__ import annotations

from contact_center.channels.service import create_channel
from contact_center.contacts.service import create_contact
from contact_center.inbox.models import Conversation
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.messaging.service import relink_inbound
from contact_center.providers.base import InboundReply


def reply(channel, phone: str, external_id: str) -> ReplyIn:
    return ReplyIn("kolmeya_sandbox.reply", channel.id,
                   InboundReply(external_id, phone, "Oi", None, None, None), "{}")


def test_replies_from_a_number_added_later_are_linked_once(db):
    channel = create_channel(db, name="SMS", provider="kolmeya_sandbox", credentials={"token": "sandbox-token"})
    [first, second, stranger] = record_replies(db, [reply(channel, "5548991910234", "r1"),
                                                    reply(channel, "554891910234", "r2"),  # 12-digit form
                                                    reply(channel, "5511900000009", "r3")])
    maria = create_contact(db, {"name": "Maria", "mobile": "(48) 99191-0234"})

    assert relink_inbound(db) == 2
    db.expire_all()
    linked = {m.id: m.contact_id for m in db.query(Message)}
    assert linked == {first.message_id: maria.id, second.message_id: maria.id, stranger.message_id: None}
    conversation_id = db.get(Message, first.message_id).conversation_id
    assert db.get(Conversation, conversation_id).contact_id == maria.id
    assert relink_inbound(db) == 0
