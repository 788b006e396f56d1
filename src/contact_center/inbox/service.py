"""Conversations: a customer's phone on a channel, found or opened as messages come and go."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, insert, select
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


_table = Conversation.__table__
_COLUMNS = (_table.c.phone_key, _table.c.id, _table.c.status, _table.c.contact_id)
# Built once: webhook batches run them many times a second.
_FIND = select(*_COLUMNS).where(_table.c.channel_id == bindparam("channel_id"),
                                _table.c.phone_key.in_(bindparam("keys", expanding=True)))
_OPEN = insert(_table).returning(*_COLUMNS)


def open_conversations(connection: Connection, channel_id: int, phones: dict[str, tuple[str, int | None]],
                       now: datetime) -> dict[str, Row]:
    """The conversation (id, status, contact_id) per match key on this channel, opening the ones
    that do not exist yet.

    `phones` maps each match key to (E.164, contact id) for a conversation it opens. Set-based, for
    the paths that handle many phones at once (bulk sends, batches of replies)."""
    found: dict[str, Row] = {}
    keys = list(phones)
    for start in range(0, len(keys), 500):  # well under every driver's parameter limit
        found.update((row.phone_key, row) for row in connection.execute(
            _FIND, {"channel_id": channel_id, "keys": keys[start:start + 500]}))
    missing = [key for key in phones if key not in found]
    if missing:
        opened = connection.execute(_OPEN, [{
            "channel_id": channel_id, "contact_id": phones[key][1], "phone_e164": phones[key][0], "phone_key": key,
            "status": "new", "unread_count": 0, "last_activity_at": now, "created_at": now} for key in missing])
        found.update((row.phone_key, row) for row in opened)
    return found
