"""What the timeline shows around each message besides the message itself: the message it quotes,
the reactions it got, its latest edit or its deletion, the SMS sent after it failed, and the
tries at sending it.

Reactions, edits and deletions arrive as messages of their own pointing at their target
(`in_reply_to_id`); an operator reads them on the target, so those rows are folded into it and
only shown on their own when the target is not in the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.inbox import queries
from contact_center.messaging import attempts, fallback
from contact_center.messaging.models import Message, MessageAttempt

FOLDED = ("reaction", "edit", "revoke")
FAILED = ("failed", "rejected", "expired", "blocked")


@dataclass
class Extras:
    quoted: Message | None = None
    reactions: list[tuple[str, str]] = field(default_factory=list)  # (direction, emoji), one per side
    edited_text: str | None = None
    revoked: bool = False
    fallback: Message | None = None  # the SMS sent after this WhatsApp message failed
    fallback_of: Message | None = None  # the failed WhatsApp message this SMS replaces
    sms_fallback_offered: bool = False  # the operator may send this failed WhatsApp message again by SMS
    attempts: list[MessageAttempt] = field(default_factory=list)  # the tries at sending it, oldest first


def extras_for(session: Session, messages: list[Message], scope: list[int]) -> dict[int, Extras]:
    """Extras by message id for these messages, reading only messages of the conversations in `scope`."""
    if not messages:
        return {}
    ids = [m.id for m in messages]
    found: dict[int, Extras] = {}

    def of(message_id: int) -> Extras:
        return found.setdefault(message_id, Extras())

    # Folded rows pointing at these messages, oldest first: the last one of each side wins.
    latest_reaction: dict[tuple[int, str], str | None] = {}
    for row in session.scalars(select(Message).where(Message.in_reply_to_id.in_(ids),
                                                     Message.content_type.in_(FOLDED),
                                                     Message.conversation_id.in_(scope))
                               .order_by(Message.created_at, Message.id)):
        content = row.content or {}
        if row.content_type == "reaction":
            latest_reaction[(row.in_reply_to_id, row.direction)] = (content.get("reaction") or {}).get("emoji")
        elif row.content_type == "edit":
            of(row.in_reply_to_id).edited_text = (content.get("edit") or {}).get("text") or ""
        else:
            of(row.in_reply_to_id).revoked = True
    for (target, direction), emoji in latest_reaction.items():
        if emoji:  # None: the reaction was removed
            of(target).reactions.append((direction, emoji))

    quoted_ids = {m.in_reply_to_id for m in messages if m.in_reply_to_id and m.content_type not in FOLDED}
    if quoted_ids:
        by_id = {q.id: q for q in session.scalars(select(Message).where(Message.id.in_(quoted_ids),
                                                                        Message.conversation_id.in_(scope)))}
        for m in messages:
            if m.in_reply_to_id in by_id and m.content_type not in FOLDED:
                of(m.id).quoted = by_id[m.in_reply_to_id]

    for sms in session.scalars(select(Message).where(Message.fallback_of_id.in_(ids))):
        of(sms.fallback_of_id).fallback = sms
    originals = {m.fallback_of_id for m in messages if m.fallback_of_id}
    if originals:
        by_id = {o.id: o for o in session.scalars(select(Message).where(Message.id.in_(originals)))}
        for m in messages:
            if m.fallback_of_id in by_id:
                of(m.id).fallback_of = by_id[m.fallback_of_id]
    for message_id in fallback.offered(session, messages):
        of(message_id).sms_fallback_offered = True
    for message_id, tries in attempts.history(session, [m.id for m in messages if m.direction == "out"]).items():
        of(message_id).attempts = tries
    return found


def fold(timeline: queries.Timeline) -> list:
    """The entries to draw: reactions, edits and deletions whose target is drawn too are left out."""
    shown = {e.message.id for e in timeline.entries if e.kind == "message"}
    return [e for e in timeline.entries
            if not (e.kind == "message" and e.message.content_type in FOLDED and e.message.in_reply_to_id in shown)]


def target_of(entry: queries.MessageEntry) -> int | None:
    """The message a live update of this folded row should redraw instead, if any."""
    message = entry.message
    return message.in_reply_to_id if message.content_type in FOLDED and message.in_reply_to_id else None
