"""Conversations: a customer's phone on a channel, found or opened as messages come and go."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from contact_center.contacts.models import Contact
from contact_center.db import utcnow
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


def open_conversations(connection: Connection, channel_id: int, phones: dict[str, tuple[str, int | None]],
                       now: datetime) -> dict[str, int]:
    """Conversation id per match key on this channel, opening the ones that do not exist yet.

    `phones` maps each match key to (E.164, contact id) for a conversation it opens. Set-based, for
    the paths that handle many phones at once (bulk sends, batches of replies)."""
    table = Conversation.__table__
    found: dict[str, int] = {}

    def load(keys: list[str]) -> None:
        for start in range(0, len(keys), 500):  # well under every driver's parameter limit
            found.update(connection.execute(select(table.c.phone_key, table.c.id).where(
                table.c.channel_id == channel_id, table.c.phone_key.in_(keys[start:start + 500]))).all())

    load(list(phones))
    missing = [key for key in phones if key not in found]
    if missing:
        connection.execute(insert(table), [{
            "channel_id": channel_id, "contact_id": phones[key][1], "phone_e164": phones[key][0], "phone_key": key,
            "status": "new", "unread_count": 0, "last_activity_at": now, "created_at": now} for key in missing])
        load(missing)
    return found
