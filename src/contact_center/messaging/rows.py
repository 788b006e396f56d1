"""The one builder of a message row, whichever path writes it: a message sent from the API, the
composer or the CLI (messaging.service.queue_outbound, through the ORM), a bulk send's chunk
(campaigns, Core inserts), a batch of customers' replies (messaging/inbound.py, at the driver
level). Each gets a dict of Message's columns; times are placed as given (the reply batches pass
them already bound for their driver)."""

from __future__ import annotations

import json
import secrets
import time

from contact_center.channels.kinds import ChannelKind
from contact_center.translations import Words, store


def new_reference() -> str:
    """32 hex characters: milliseconds since the epoch, then 80 random bits. Time-ordered like a
    ULID, so the unique index grows at its end instead of dirtying pages all over the tree."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def outbound(kind: ChannelKind, *, channel_id: int, conversation_id: int, contact, origin: str, phone: str,
             phone_e164: str, body: str, now, author_id: int | None = None, campaign_id: int | None = None,
             contact_id: int | None = None, content_type: str = "text", content: dict | None = None,
             blocked_reason: Words | None = None, scheduled: bool = False, despite_opt_out: bool = False) -> dict:
    """A message to a customer: queued (or `scheduled`: a campaign's, until the campaign releases
    it), or blocked with the reason when `contact` opted out of this kind of channel (unless
    `despite_opt_out`: the one message telling them so) (`contact_id` stands in when only the
    conversation knows who it is). `body` has been checked (kind.check_body)."""
    measure = kind.measure(body)
    blocked = (kind.opted_out(contact) and not despite_opt_out) or blocked_reason is not None
    waiting = "scheduled" if scheduled else "queued"
    return {
        "reference": new_reference(), "channel_id": channel_id, "conversation_id": conversation_id,
        "contact_id": contact.id if contact is not None else contact_id, "campaign_id": campaign_id,
        "author_id": author_id, "direction": "out", "origin": origin, "phone": phone, "phone_e164": phone_e164,
        "body": body, "content_type": content_type, "content": content, "status": "blocked" if blocked else waiting,
        "status_reason": store(blocked_reason or kind.opted_out_reason) if blocked else None, "status_inferred": False,
        "encoding": measure.encoding, "segments": measure.segments, "attempts": 0, "created_at": now,
        "queued_at": None if blocked or scheduled else now, "failed_at": now if blocked else None, "updated_at": now,
    }


def inbound(kind: ChannelKind, *, channel_id: int, conversation_id: int, contact_id: int | None, origin: str,
            phone: str, phone_e164: str, body: str, provider_message_id: str, in_reply_to_id: int | None,
            received_at, now, content_type: str = "text", content: dict | None = None) -> dict:
    """A customer's message, as it arrived (`content` goes in as JSON text: these rows are inserted
    at the driver level)."""
    measure = kind.measure(body)
    return {
        "reference": new_reference(), "channel_id": channel_id, "conversation_id": conversation_id,
        "contact_id": contact_id, "direction": "in", "origin": origin, "phone": phone, "phone_e164": phone_e164,
        "body": body, "content_type": content_type, "content": None if content is None else json.dumps(content),
        "media_state": "pending" if content and "media" in content else None,
        "status": "received", "provider_message_id": provider_message_id,
        "encoding": measure.encoding, "segments": measure.segments, "attempts": 0,
        "in_reply_to_id": in_reply_to_id, "created_at": now, "received_at": received_at, "updated_at": now,
    }
