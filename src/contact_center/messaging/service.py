"""Messages: queued durably, claimed before sending, and moved only forward by what providers report.

Invariants kept here:
1. a message accepted by the system is committed before any job is enqueued (after_commit) and
   the sweeper re-enqueues anything stuck;
2. a message is sent at most once: dispatch claims it (queued → sending) in its own transaction,
   and our reference travels with it so the provider recognises a retry after a crash;
3. statuses move forward only, however many times and in whatever order callbacks arrive.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.audit.service import record
from contact_center.channels.models import Channel
from contact_center.contacts.models import Contact
from contact_center.contacts.service import candidates_by_key, find_by_phone, pick_contact
from contact_center.db import utcnow
from contact_center.errors import InvalidInput
from contact_center.events import announce
from contact_center.inbox.models import Conversation
from contact_center.inbox.service import conversation_for, note_outbound
from contact_center.messaging.models import FINAL_FAILURES, STATE_TIMESTAMP, Message, moves_forward
from contact_center.messaging.segments import count_segments
from contact_center.providers.base import SendOutcome, StatusUpdate

log = logging.getLogger(__name__)

MAX_BODY_CHARACTERS = 1600  # ten concatenated segments; beyond that carriers split unreliably
OPT_OUT_WORDS = {"SAIR", "PARAR", "PARE", "STOP", "CANCELAR", "DESCADASTRAR"}


def new_reference() -> str:
    """32 hex characters: milliseconds since the epoch, then 80 random bits. Time-ordered like a
    ULID, so the unique index grows at its end instead of dirtying pages all over the tree."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def _stamp(message: Message, status: str, at: datetime) -> None:
    message.status = status
    column = STATE_TIMESTAMP.get(status)
    if column and getattr(message, column) is None:
        setattr(message, column, at)


def announce_message(session: Session, message: Message, kind: str) -> None:
    """Tell operators' screens (after commit): kind is message.created or message.status."""
    announce(session, kind, message_id=message.id, conversation_id=message.conversation_id,
             contact_id=message.contact_id, direction=message.direction, status=message.status,
             status_reason=message.status_reason)


OPTED_OUT_REASON = "not sent: the contact opted out of SMS"


def queue_outbound(
    session: Session, *, channel: Channel, phone: str, body: str, contact: Contact | None = None,
    origin: str, author_id: int | None = None, campaign_id: int | None = None, via: str = "api",
    audit: bool = True,
) -> Message:
    """Store an outbound SMS as queued (or blocked, for an opted-out contact). The caller commits;
    dispatch is enqueued only after that commit."""
    if channel.kind != "sms":
        raise InvalidInput(f"channel {channel.name!r} is a {channel.kind} channel, not SMS", field="channel")
    if not channel.active:
        raise InvalidInput(f"channel {channel.name!r} is deactivated", field="channel")
    body = (body or "").strip()
    if not body:
        raise InvalidInput("the message is empty", field="body")
    if len(body) > MAX_BODY_CHARACTERS:
        raise InvalidInput(f"the message has {len(body)} characters; the limit is {MAX_BODY_CHARACTERS}",
                           field="body")
    try:
        identity = phones.identify(phone)
    except phones.PhoneNumberError as exc:
        raise InvalidInput(str(exc), field="phone") from None
    if contact is None:
        contact = find_by_phone(session, identity.e164)
    now = utcnow()
    conversation = conversation_for(session, channel.id, identity, contact)
    note_outbound(conversation, now)
    info = count_segments(body)
    message = Message(
        reference=new_reference(), channel_id=channel.id, conversation_id=conversation.id,
        contact_id=contact.id if contact else conversation.contact_id, campaign_id=campaign_id, author_id=author_id,
        direction="out", origin=origin, phone=phone.strip(), phone_e164=identity.e164, body=body,
        encoding=info.encoding, segments=info.segments, attempts=0, created_at=now,
    )
    if contact is not None and contact.opt_out_sms:
        message.status_reason = OPTED_OUT_REASON
        _stamp(message, "blocked", now)
    else:
        _stamp(message, "queued", now)
    session.add(message)
    session.flush()
    announce_message(session, message, "message.created")
    if audit:
        record(session, action="sms.send", subject_type="message", subject_id=message.id, actor_id=author_id,
               via=via, to=identity.e164, channel=channel.name, status=message.status)
    return message


def claim_for_dispatch(session: Session, message_ids: list[int]) -> list[Message]:
    """queued → sending, in one statement: whoever flips the row owns the send; others get nothing."""
    now = utcnow()
    claimed = session.scalars(
        update(Message)
        .where(Message.id.in_(message_ids), Message.status == "queued",
               or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))
        .values(status="sending", claimed_at=now, attempts=Message.attempts + 1)
        .returning(Message.id)
    ).all()
    if not claimed:
        return []
    return list(session.scalars(select(Message).where(Message.id.in_(claimed)).order_by(Message.id)
                                .execution_options(populate_existing=True)))


def apply_send_outcome(session: Session, message: Message, outcome: SendOutcome, request_id: str | None) -> None:
    now = utcnow()
    message.provider_request_id = request_id
    if outcome.provider_message_id:
        message.provider_message_id = outcome.provider_message_id
    if outcome.accepted or (outcome.duplicate and message.attempts > 1):
        # A duplicate on a retry means the provider got our earlier attempt: it was sent, once.
        if outcome.duplicate:
            message.status_reason = "the provider already had this message from an earlier attempt"
        if message.status == "sending":
            _stamp(message, "sent", now)
        elif message.sent_at is None:
            message.sent_at = now  # a delivery report beat the send response here
    elif outcome.state == "unknown":
        message.status_reason = outcome.reason
        if message.status == "sending":
            _stamp(message, "sent", now)  # sending again could deliver it twice (see UNKNOWN_REASON)
    else:
        message.status_reason = outcome.reason
        if message.status == "sending":
            _stamp(message, outcome.state, now)
    announce_message(session, message, "message.status")


def requeue_after_error(message: Message, reason: str, delay_seconds: float, max_attempts: int) -> bool:
    """Put a message back for a later try; after max_attempts it fails. Returns True when requeued."""
    now = utcnow()
    if message.attempts >= max_attempts:
        message.status_reason = f"gave up after {message.attempts} attempts: {reason}"
        _stamp(message, "failed", now)
        return False
    message.status = "queued"
    message.status_reason = f"attempt {message.attempts} failed, retrying: {reason}"
    message.next_attempt_at = now + timedelta(seconds=delay_seconds)
    return True


def fail(message: Message, reason: str) -> None:
    message.status_reason = reason
    _stamp(message, "failed", utcnow())


STATUS_FROM_PROVIDER = {"accepted": None, "sent": "sent", "delivered": "delivered", "read": "read",
                        "failed": "failed", "rejected": "rejected", "expired": "expired"}


def find_outbound(session: Session, channel_id: int, provider_message_id: str | None,
                  reference: str | None) -> Message | None:
    if provider_message_id:
        message = session.scalar(select(Message).where(Message.channel_id == channel_id,
                                                       Message.provider_message_id == provider_message_id))
        if message is not None:
            return message
    if reference:
        return session.scalar(select(Message).where(Message.reference == reference,
                                                    Message.channel_id == channel_id))
    return None


@dataclass(frozen=True)
class StatusResult:
    outcome: str  # applied | ignored (would move backwards) | pending (no such message yet)
    message: Message | None


def apply_status(session: Session, channel_id: int, update_: StatusUpdate) -> StatusResult:
    message = find_outbound(session, channel_id, update_.provider_message_id, update_.reference)
    if message is None:
        return StatusResult("pending", None)
    if update_.provider_message_id and not message.provider_message_id:
        message.provider_message_id = update_.provider_message_id
    target = STATUS_FROM_PROVIDER.get(update_.state)
    if target is None or not moves_forward(message.status, target):
        return StatusResult("ignored", message)
    now = utcnow()
    if message.sent_at is None and target != "sent":
        message.sent_at = now
    _stamp(message, target, now)
    message.provider_status_code = update_.code
    if target in FINAL_FAILURES:
        message.status_reason = update_.text or target
    announce_message(session, message, "message.status")
    return StatusResult("applied", message)


def relink_inbound(session: Session) -> int:
    """Attach inbound messages that arrived before their contact existed. Returns how many were linked.

    Set-based: after a large contact import there can be thousands of such messages."""
    orphans = session.execute(select(Message.id, Message.phone_e164, Message.conversation_id)
                              .where(Message.direction == "in", Message.contact_id.is_(None))).all()
    identities = {phone: phones.identify(phone) for phone in {row.phone_e164 for row in orphans}}
    candidates = candidates_by_key(session.connection(), list({i.key for i in identities.values()}))
    links = []
    for row in orphans:
        identity = identities[row.phone_e164]
        chosen = pick_contact(identity, candidates.get(identity.key, []))
        if chosen is not None:
            links.append({"message_id": row.id, "conversation_id": row.conversation_id, "contact_id": chosen.id})
    if links:
        connection = session.connection()
        messages, conversations = Message.__table__, Conversation.__table__
        connection.execute(update(messages).where(messages.c.id == bindparam("message_id"))
                           .values(contact_id=bindparam("contact_id")), links)
        connection.execute(update(conversations).where(conversations.c.id == bindparam("conversation_id"),
                                                       conversations.c.contact_id.is_(None))
                           .values(contact_id=bindparam("contact_id")), links)
    return len(links)
