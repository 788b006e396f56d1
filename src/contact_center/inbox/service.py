"""Conversations: a customer's phone on a channel, found or opened as messages come and go."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from contact_center.contacts.models import Contact
from contact_center.db import DriverCursor, chunks, utcnow
from contact_center.inbox.models import Conversation
from contact_center.phones import PhoneIdentity


def conversation_for(session: Session, channel_id: int, identity: PhoneIdentity,
                     contact: Contact | None) -> Conversation:
    """The conversation of this phone on this channel, opened when there is none yet."""
    conversation = session.scalar(
        select(Conversation).where(Conversation.channel_id == channel_id, Conversation.phone_key == identity.key)
    )
    if conversation is None:
        conversation = Conversation(channel_id=channel_id, phone_e164=identity.e164, phone_key=identity.key,
                                    contact_id=contact.id if contact else None, status="new", unread_count=0,
                                    last_activity_at=utcnow())
        session.add(conversation)
        session.flush()
    elif conversation.contact_id is None and contact is not None:
        conversation.contact_id = contact.id
    return conversation


def note_outbound(conversation: Conversation, at: datetime) -> None:
    conversation.last_activity_at = at


class OpenConversation(NamedTuple):
    phone_key: str
    id: int
    status: str
    contact_id: int | None
    assignee_id: int | None
    opened: bool = False  # by this call


def open_conversations(connection: Connection, channel_id: int, phones: dict[str, tuple[str, int | None]],
                       now: datetime, *, inbound: dict[str, tuple[int, datetime]] | None = None,
                       ) -> dict[str, OpenConversation]:
    """The conversation (id, status, contact_id, assignee_id) per match key on this channel, opening
    the ones that do not exist yet.

    `phones` maps each match key to (E.164, contact id) for a conversation it opens; `inbound`, to
    (unread replies, last reply time) when replies open it. Set-based, for the paths that handle
    many phones at once (bulk sends, batches of replies); at the driver level, as webhook batches
    run it many times a second."""
    driver = DriverCursor(connection)
    found: dict[str, OpenConversation] = {}
    for chunk in chunks(list(phones)):
        found.update((row[0], OpenConversation(*row)) for row in driver.rows(
            "SELECT phone_key, id, status, contact_id, assignee_id FROM conversations "
            f"WHERE channel_id = ? AND phone_key IN ({driver.marks(len(chunk))})", [channel_id, *chunk]))
    inbound = inbound or {}
    rows = []
    for key in phones:
        if key not in found:
            unread, last_inbound = inbound.get(key, (0, None))
            rows.append((channel_id, phones[key][1], phones[key][0], key, "new", unread,
                         driver.timestamp(last_inbound or now), driver.timestamp(last_inbound), driver.timestamp(now)))
    found.update((row[0], OpenConversation(*row, opened=True)) for row in driver.insert(
        "conversations", ("channel_id", "contact_id", "phone_e164", "phone_key", "status", "unread_count",
                          "last_activity_at", "last_inbound_at", "created_at"),
        rows, returning="phone_key, id, status, contact_id, assignee_id"))
    return found


def forget_phones(session: Session, conversation_ids: list[int]) -> None:
    """An LGPD erasure: the conversations keep their channel, status and times, not whose phone they
    were (each gets a key of its own, unique per channel like a phone's)."""
    for conversation_id in conversation_ids:
        session.execute(update(Conversation).where(Conversation.id == conversation_id)
                        .values(phone_e164="", phone_key=f"apagado:{conversation_id}"))
