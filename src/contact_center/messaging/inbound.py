"""Customers' replies, recorded a batch at a time.

Replies come in bursts after a campaign. Every step here is one set-based statement for the whole
batch (which were seen already, which message each answers, whose phone it is, which conversation
it joins), so the cost per reply is a few dictionary look-ups, not a few round trips. Webhooks,
the reply poller and the retry sweeper all come through record_replies, with batches of one or many.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.audit.service import record
from contact_center.channels.kinds import kind_of
from contact_center.contacts import identifiers
from contact_center.contacts.models import Contact
from contact_center.contacts.service import candidates_by_key, pick_contact
from contact_center.db import DriverCursor, chunks, utcnow
from contact_center.inbox.service import open_conversations
from contact_center.contacts import blacklist
from contact_center.messaging import opt_out, rows
from contact_center.messaging.service import announce_message_event
from contact_center.odoo import chatter
from contact_center.providers.base import InboundReply
from contact_center.webhooks import events
from contact_center.translations import Words

log = logging.getLogger(__name__)

_contacts = Contact.__table__

# Three statements rather than one with CASEs: SQLite rewrites every index over a column in the
# SET list, so the common case (an open conversation whose contact is known) must not name
# status, assignee or contact. The other two only write the rows their WHERE lets through, which
# also keeps them right when another transaction changed a conversation since it was read.
_TOUCH = ("UPDATE conversations SET unread_count = unread_count + ?, last_activity_at = ?, last_inbound_at = ? "
          "WHERE id = ?")
_REOPEN = "UPDATE conversations SET status = 'new', assignee_id = NULL WHERE status = 'done' AND id IN ({})"
_SET_CONTACT = "UPDATE conversations SET contact_id = ? WHERE id = ? AND contact_id IS NULL"


@dataclass
class ReplyIn:
    """One reply to record: where it came from, and its raw payload for the event log."""

    source: str  # e.g. kolmeya.reply
    channel_id: int
    reply: InboundReply
    payload: str
    origin: str = "webhook"  # webhook | poll | retry
    kind: str = "sms"  # of the channel (channels/kinds.py)


@dataclass
class ReplyOut:
    outcome: str  # applied | duplicate | rejected
    message_id: int | None = None
    detail: str | None = None


@dataclass
class _Pending:
    item: ReplyIn
    identity: phones.PhoneIdentity
    answered: tuple[int, int | None] | None = None  # (message id, contact id)
    contact_id: int | None = None
    opt_out: bool = False
    conversation_id: int | None = None
    assignee_id: int | None = None  # of the conversation, once the reply has joined it


def record_replies(session: Session, items: list[ReplyIn]) -> list[ReplyOut]:
    """Record every reply not seen before; outcomes in the order given. The caller commits."""
    driver = DriverCursor(session.connection())  # every statement here runs at the driver level
    now = utcnow()
    stamp = driver.timestamp(now)
    outcomes: list[ReplyOut | None] = [None] * len(items)

    # 1. replays: seen in an earlier batch, or twice in this one
    seen: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = defaultdict(list)
    for item in items:
        by_source[item.source].append(item.reply.external_id)
    for source, ids in by_source.items():
        seen.update((source, eid) for eid in events.seen_by_driver(driver, source, ids))
    pending: list[tuple[int, _Pending]] = []
    event_rows: list[tuple] = []
    for index, item in enumerate(items):
        key = (item.source, item.reply.external_id)
        if key in seen:
            outcomes[index] = ReplyOut("duplicate")
            continue
        seen.add(key)
        try:
            identity = _identity(item.reply)
        except phones.PhoneNumberError as exc:
            outcomes[index] = ReplyOut("rejected", detail=str(exc))
            event_rows.append(_event_row(item, "rejected", None, str(exc), stamp))
            continue
        pending.append((index, _Pending(item, identity)))

    if pending:
        _link_answered(driver, [p for _, p in pending])
        _match_identifiers(driver, [p for _, p in pending])
        _match_contacts(driver, [p for _, p in pending])
        _adopt_senders(driver, [p for _, p in pending], stamp)
        _join_conversations(driver, [p for _, p in pending], now)
        _open_windows(driver, [p for _, p in pending], now)
        message_ids = _insert_messages(driver, [p for _, p in pending], stamp)
        for (index, p), message_id in zip(pending, message_ids):
            outcomes[index] = ReplyOut("applied", message_id=message_id)
            event_rows.append(_event_row(p.item, "applied", message_id, None, stamp))
        _apply_opt_outs(session, [p for _, p in pending], now)
        for (_, p), message_id in zip(pending, message_ids):
            announce_message_event(session, "message.created", message_id=message_id,
                                   conversation_id=p.conversation_id, assignee_id=p.assignee_id,
                                   contact_id=p.contact_id, direction="in", status="received", status_reason=None)
        chatter.post_after_commit(session, [m for (_, p), m in zip(pending, message_ids) if p.contact_id is not None])

    events.insert_reply_rows(driver, event_rows)
    return outcomes  # type: ignore[return-value]


def _identity(reply: InboundReply) -> phones.PhoneIdentity:
    """What the reply's conversation is keyed by: the phone, or the WhatsApp user id when the
    customer shares no phone."""
    if reply.phone:
        return phones.identify(reply.phone)
    user_id = (reply.identifiers or {}).get("wa_user_id")
    if not user_id:
        raise phones.PhoneNumberError("", Words("is neither a phone number nor a WhatsApp user id"))
    return phones.PhoneIdentity(user_id, "", identifiers.user_key(user_id))


def _match_identifiers(driver: DriverCursor, pending: list[_Pending]) -> None:
    """A sender a channel identifies (WhatsApp's wa_id, user id) is the contact holding one of the
    ids; a user who shares no phone joins the conversation of the phone we know them by."""
    with_ids = [p for p in pending if p.item.reply.identifiers and not p.answered]
    if not with_ids:
        return
    held = identifiers.contacts_by_identifier(
        driver, [pair for p in with_ids for pair in p.item.reply.identifiers.items() if pair[1]])
    for p in with_ids:
        flag = kind_of(p.item.kind).opt_out_field
        for pair in p.item.reply.identifiers.items():
            if pair in held:
                contact_id, opt_out_sms, opt_out_whatsapp, wa_id = held[pair]
                p.contact_id = contact_id
                p.opt_out = opt_out_whatsapp if flag == "opt_out_whatsapp" else opt_out_sms
                if not p.identity.e164 and wa_id:
                    p.identity = phones.identify("+" + wa_id)
                break


def _adopt_senders(driver: DriverCursor, pending: list[_Pending], stamp) -> None:
    """A sender the channel identifies becomes a contact at once (with the name they gave it), and
    the contact keeps the ids it was seen with."""
    for p in pending:
        reply = p.item.reply
        if not reply.identifiers:
            continue
        if p.contact_id is None:
            name = reply.profile_name or reply.identifiers.get("wa_username") or p.identity.e164 or p.identity.raw
            mobile = p.identity.e164 or None
            [(p.contact_id,)] = driver.insert(
                "contacts", ("name", "mobile", "mobile_e164", "mobile_key", "opt_out_sms", "opt_out_whatsapp",
                             "created_at", "updated_at"),
                [(name[:200], mobile, mobile, p.identity.key if mobile else None, False, False, stamp, stamp)],
                returning="id")
            for other in pending:  # the same sender twice in one batch: one contact
                if other is not p and other.contact_id is None and other.identity.key == p.identity.key:
                    other.contact_id = p.contact_id
            if mobile:  # the same phone's SMS conversation, written before we knew them: one timeline
                _link_phone(driver, p.identity.key, p.contact_id)
        identifiers.attach(driver, p.contact_id, {**reply.identifiers, **(reply.new_identifiers or {})}, stamp)


def _link_phone(driver: DriverCursor, phone_key: str, contact_id: int) -> None:
    """Conversations (and their messages) of this phone that have no contact yet become the contact's."""
    driver.execute("UPDATE messages SET contact_id = ? WHERE contact_id IS NULL AND conversation_id IN "
                   "(SELECT id FROM conversations WHERE phone_key = ? AND contact_id IS NULL)", [contact_id, phone_key])
    driver.execute("UPDATE conversations SET contact_id = ? WHERE phone_key = ? AND contact_id IS NULL",
                   [contact_id, phone_key])


def _open_windows(driver: DriverCursor, pending: list[_Pending], now) -> None:
    """On kinds with a reply window (WhatsApp), every customer message reopens it for its length."""
    closes = {}
    for p in pending:
        window = kind_of(p.item.kind).reply_window
        if window is not None:
            at = (p.item.reply.received_at or now) + window
            closes[p.conversation_id] = max(at, closes.get(p.conversation_id, at))
    driver.executemany("UPDATE conversations SET window_closes_at = ? WHERE id = ? AND (window_closes_at IS NULL "
                       "OR window_closes_at < ?)",
                       [(driver.timestamp(at), conversation_id, driver.timestamp(at))
                        for conversation_id, at in closes.items()])


def _event_row(item: ReplyIn, outcome: str, message_id: int | None, detail: str | None, stamp) -> tuple:
    return events.reply_row(item.source, item.reply.external_id, item.channel_id, item.payload, outcome, detail,
                            message_id, stamp)


def _link_answered(driver: DriverCursor, pending: list[_Pending]) -> None:
    """The message each reply answers, when the provider says (by its id, else by our reference) and
    it went to the number the reply comes from."""
    for column, attribute in (("provider_message_id", "in_reply_to_provider_id"),
                              ("reference", "in_reply_to_reference")):
        wanted = defaultdict(list)
        for p in pending:
            value = getattr(p.item.reply, attribute)
            if value and p.answered is None:
                wanted[(p.item.channel_id, value)].append(p)
        by_channel: dict[int, list[str]] = defaultdict(list)
        for channel_id, value in wanted:
            by_channel[channel_id].append(value)
        for channel_id, values in by_channel.items():
            for chunk in chunks(values):
                for value, message_id, contact_id, phone, phone_e164 in driver.rows(
                        f"SELECT {column}, id, contact_id, phone, phone_e164 FROM messages "
                        f"WHERE channel_id = ? AND {column} IN ({driver.marks(len(chunk))})", [channel_id, *chunk]):
                    # Only a message that went to this same number (or WhatsApp user): a quoted id
                    # from another customer's SMS must not hand this reply to that customer.
                    key = phones.match_key(phone_e164) if phone_e164 else identifiers.user_key(phone)
                    for p in wanted[(channel_id, value)]:
                        if key == p.identity.key:
                            p.answered = (message_id, contact_id)


def _match_contacts(driver: DriverCursor, pending: list[_Pending]) -> None:
    """Each reply's contact: the one its answered message went to, else find_by_phone's rule."""
    answered_contacts = {p.answered[1] for p in pending if p.answered and p.answered[1] is not None}
    opt_outs: dict[int, dict[str, bool]] = {}  # contact id → its opt-out flags
    for chunk in chunks(list(answered_contacts)):
        opt_outs.update((contact_id, {"opt_out_sms": bool(sms), "opt_out_whatsapp": bool(whatsapp)})
                        for contact_id, sms, whatsapp in driver.rows(
            f"SELECT id, opt_out_sms, opt_out_whatsapp FROM contacts WHERE id IN ({driver.marks(len(chunk))})",
            chunk))
    candidates = candidates_by_key(driver.connection, list({p.identity.key for p in pending
                                                     if not (p.answered and p.answered[1] in opt_outs)}))
    for p in pending:
        flag = kind_of(p.item.kind).opt_out_field
        if p.contact_id is not None:
            continue  # found by an id the channel knows the sender by
        if p.answered and p.answered[1] in opt_outs:
            p.contact_id, p.opt_out = p.answered[1], opt_outs[p.answered[1]][flag]
            continue
        chosen = pick_contact(p.identity, candidates.get(p.identity.key, []))
        if chosen is not None:
            p.contact_id, p.opt_out = chosen.id, getattr(chosen, flag)


def _join_conversations(driver: DriverCursor, pending: list[_Pending], now) -> None:
    """Find or open each phone's conversation on its channel; count the replies unread, reopen it if
    it was done, and give it the contact when it had none. A conversation these replies open is
    created with its count and time, so only the ones that existed are updated."""
    wanted: dict[tuple[int, str], list[_Pending]] = defaultdict(list)
    for p in pending:
        wanted[(p.item.channel_id, p.identity.key)].append(p)
    by_channel: dict[int, dict[str, tuple[str, int | None]]] = defaultdict(dict)
    inbound: dict[int, dict[str, tuple[int, datetime]]] = defaultdict(dict)
    for (channel_id, key), group in wanted.items():
        contact_id = next((p.contact_id for p in group if p.contact_id), None)
        by_channel[channel_id][key] = (group[0].identity.e164, contact_id)
        inbound[channel_id][key] = (len(group), max(p.item.reply.received_at or now for p in group))
    found = {(channel_id, key): conversation for channel_id, phones in by_channel.items()
             for key, conversation in open_conversations(driver.connection, channel_id, phones, now,
                                                         inbound=inbound[channel_id]).items()}
    touches, contacts = [], []
    for (channel_id, key), group in wanted.items():
        conversation = found[(channel_id, key)]
        # A done conversation is reopened unassigned (_REOPEN below): its replies are anyone's to see.
        assignee_id = None if conversation.status == "done" else conversation.assignee_id
        for p in group:
            p.conversation_id, p.assignee_id = conversation.id, assignee_id
        if conversation.opened:
            continue
        count, at = inbound[channel_id][key]
        at = driver.timestamp(at)
        touches.append((count, at, at, conversation.id))
        contact_id = by_channel[channel_id][key][1]
        if conversation.contact_id is None and contact_id is not None:
            contacts.append((contact_id, conversation.id))
    driver.executemany(_TOUCH, touches)
    for chunk in chunks([touch[3] for touch in touches]):
        driver.execute(_REOPEN.format(driver.marks(len(chunk))), chunk)  # writes only the ones that were done
    if contacts:
        driver.executemany(_SET_CONTACT, contacts)


def _insert_messages(driver: DriverCursor, pending: list[_Pending], stamp) -> list[int]:
    values = []
    for p in pending:
        reply = p.item.reply
        values.append(rows.inbound(
            kind_of(p.item.kind), channel_id=p.item.channel_id,
            conversation_id=p.conversation_id, contact_id=p.contact_id, origin=p.item.origin,
            phone=reply.phone or p.identity.raw, phone_e164=p.identity.e164, body=reply.text,
            content_type=reply.content_type, content=reply.content, provider_message_id=reply.external_id,
            in_reply_to_id=p.answered[0] if p.answered else None,
            received_at=driver.timestamp(reply.received_at) if reply.received_at else stamp, now=stamp))
    columns = tuple(values[0])
    # RETURNING rows come in no promised order, so the ids are matched by our reference.
    ids = dict(driver.insert("messages", columns, [tuple(row.values()) for row in values],
                             returning="reference, id"))
    return [ids[row["reference"]] for row in values]


def _apply_opt_outs(session: Session, pending: list[_Pending], now) -> None:
    """A reply that is only an opt-out keyword (SAIR, PARE, STOP…: messaging/opt_out.py) opts its
    contact out of the reply's kind of channel, and is answered once with the confirmation; an
    SMS opt-out also goes to the providers' blacklists. A contact already opted out gets nothing
    more, so SAIR twice is confirmed once."""
    keywords = None
    opted: dict[str, dict[int, _Pending]] = defaultdict(dict)  # opt-out flag → contact id → the reply
    for p in pending:
        if p.contact_id is None or p.opt_out:
            continue
        keywords = opt_out.keywords() if keywords is None else keywords
        if opt_out.is_keyword(p.item.reply.text, keywords):
            opted[kind_of(p.item.kind).opt_out_field].setdefault(p.contact_id, p)
    for flag, replies in opted.items():
        session.connection().execute(update(_contacts).where(_contacts.c.id.in_(list(replies)))
                                     .values({flag: True, "updated_at": now}))
        for contact_id, p in replies.items():
            word = p.item.reply.text.strip()
            record(session, action=f"contact.{flag}", subject_type="contact", subject_id=contact_id,
                   via=p.item.origin, word=word)
            log.info("contact %d opted out (%s) by replying %r", contact_id, flag, word)
            opt_out.confirm(session, p.item.channel_id, p.conversation_id, contact_id)
        if flag == "opt_out_sms":
            blacklist.push_after_commit(session, replies)
