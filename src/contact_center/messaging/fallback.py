"""SMS fallback: the same text by SMS when a WhatsApp message cannot reach the customer (not on
WhatsApp, blocked, or the 24-hour window closed). Per WhatsApp channel (`sms_fallback` setting):
off; offer (the operator gets a button); send (at once, by the system). The SMS points at the
WhatsApp message it stands in for (`fallback_of_id`): the timeline shows both attempts, linked."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.channels.kinds import kind_of
from contact_center.channels.models import Channel
from contact_center.contacts.models import Contact
from contact_center.errors import InvalidInput
from contact_center.messaging import service
from contact_center.messaging.models import Message
from contact_center.translations import Words, say_stored

log = logging.getLogger(__name__)
FALLBACK_CODES = {131026, 131047}  # undeliverable; the window closed


def mode(channel: Channel) -> str:
    """off | offer | send."""
    if kind_of(channel).name != "whatsapp":
        return "off"
    return (channel.settings or {}).get("sms_fallback", "offer")


def sms_channel(session: Session) -> Channel | None:
    return session.scalar(select(Channel).where(Channel.kind == "sms", Channel.active.is_(True))
                          .order_by(Channel.id).limit(1))


def why_not(session: Session, message: Message, channel: Channel) -> Words | None:
    """Why this message cannot be sent again by SMS; None when it can."""
    if mode(channel) == "off":
        return Words("channel \"{name}\" has SMS fallback off", name=channel.name)
    if not _undeliverable(message):
        return Words("only a WhatsApp message that could not be delivered (not on WhatsApp, or the window closed) "
                     "is sent again by SMS")
    if not message.phone_e164:
        return Words("the customer shares no phone number")
    if session.scalar(select(Message.id).where(Message.fallback_of_id == message.id).limit(1)) is not None:
        return Words("it was already sent by SMS")
    if sms_channel(session) is None:
        return Words("there is no active SMS channel")
    return None


def _undeliverable(message: Message) -> bool:
    return message.direction == "out" and message.status == "failed" and message.provider_status_code in FALLBACK_CODES


def offered(session: Session, messages: list[Message]) -> set[int]:
    """The ids of these messages whose operator is offered "send by SMS" (channel set to `offer`,
    nothing in why_not's way), in at most three queries whatever the count: a timeline's worth."""
    candidates = [m for m in messages if _undeliverable(m) and m.phone_e164]
    if not candidates:
        return set()  # the common case, without a query
    channels = {c.id: c for c in session.scalars(select(Channel).where(
        Channel.id.in_({m.channel_id for m in candidates})))}
    candidates = [m for m in candidates if mode(channels[m.channel_id]) == "offer"]
    if not candidates or sms_channel(session) is None:
        return set()
    done = set(session.scalars(select(Message.fallback_of_id).where(
        Message.fallback_of_id.in_([m.id for m in candidates]))))
    return {m.id for m in candidates if m.id not in done}


def send_by_sms(session: Session, message: Message, *, author_id: int | None, via: str) -> Message:
    """Queue the same text by SMS to the same customer. The caller commits, then dispatches."""
    channel = session.get(Channel, message.channel_id)
    problem = why_not(session, message, channel)
    if problem is not None:
        raise InvalidInput("not sent by SMS: {problem}", problem=problem, field="message")
    contact = session.get(Contact, message.contact_id) if message.contact_id else None
    sms = service.queue_outbound(session, channel=sms_channel(session), phone=message.phone_e164, body=message.body,
                                 contact=contact, origin="fallback", author_id=author_id, via=via)
    sms.fallback_of_id = message.id
    session.flush()
    log.info("message %d sent again by SMS as message %d (%s)", message.id, sms.id,
             say_stored(message.status_reason, None))
    return sms


def send_automatically(session: Session, channel_id: int, message_ids: list[int]) -> list[int]:
    """On a channel set to `send`: the same text by SMS for each of these failed messages that
    can go (why_not). The ids of the SMS queued, to dispatch once the caller has committed."""
    channel = session.get(Channel, channel_id) if message_ids else None
    if channel is None or mode(channel) != "send":
        return []
    return [send_by_sms(session, message, author_id=None, via="system").id
            for message in session.scalars(select(Message).where(Message.id.in_(message_ids)).order_by(Message.id))
            if why_not(session, message, channel) is None]
