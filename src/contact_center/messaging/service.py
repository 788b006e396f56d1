"""Messages: queued durably, claimed before sending, and moved only forward by what providers report.

Invariants kept here:
1. a message accepted by the system is committed before any job is enqueued (after_commit) and
   the sweeper re-enqueues anything stuck;
2. a message is sent at most once: dispatch claims it (queued → sending) in its own transaction,
   and one whose send has an unknown outcome is asked about before it is sent again
   (messaging/reconcile.py), whether or not the provider would recognise our reference;
3. statuses move forward only, however many times and in whatever order callbacks arrive; a
   failure we only inferred gives way to what the provider says, one it stated is final.

A message's `status_reason` explains its current status: every change of status sets it anew.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Select, bindparam, event, or_, select, update
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.audit.service import record
from contact_center.channels.kinds import kind_of
from contact_center.channels.models import Channel
from contact_center.contacts import identifiers
from contact_center.contacts.models import Contact
from contact_center.contacts.service import candidates_by_key, find_by_phone, pick_contact
from contact_center.db import DriverCursor, chunks, utcnow
from contact_center.errors import Conflict, InvalidInput
from contact_center.events import announce, announce_all
from contact_center.inbox.models import Conversation
from contact_center.inbox.service import conversation_for, note_outbound
from contact_center.messaging.models import FINAL_FAILURES, STATE_TIMESTAMP, Message, moves_forward
from contact_center.messaging import attempts, rows
from contact_center.privacy import erased_numbers
from contact_center.providers.base import SendOutcome, StatusUpdate
from contact_center.translations import Words, as_words, say_stored, store

log = logging.getLogger(__name__)

Reason = Words | str  # words of ours, said in each reader's language, or a provider's own text


def _stamp(message: Message, status: str, at: datetime, reason: Reason | None = None, *,
           inferred: bool = False) -> None:
    """Move the message to `status`, saying why (`reason`, kept to be said in each reader's
    language) and whether that is only our conclusion."""
    message.status = status
    message.status_reason = store(reason)
    message.status_inferred = inferred
    column = STATE_TIMESTAMP.get(status)
    if column and getattr(message, column) is None:
        setattr(message, column, at)


def announce_message(session: Session, message: Message, kind: str) -> None:
    """Tell operators' screens (after commit): kind is message.created or message.status. The event
    says the reason as the code writes it; the screens read it again in their operator's language."""
    announce_message_event(session, kind, message_id=message.id, conversation_id=message.conversation_id,
                           contact_id=message.contact_id, direction=message.direction, status=message.status,
                           status_reason=say_stored(message.status_reason, None))


_MESSAGE_EVENTS = "message_events"


def announce_message_event(session: Session, kind: str, **data) -> None:
    """The one builder of messages' live events, whichever path wrote the message. Each goes out
    after commit with its conversation's assignee, which says whose screens may show it
    (inbox/visibility.py): given by a caller that knows it, else read at commit for all of a
    transaction's messages at once."""
    if "assignee_id" in data:
        announce(session, kind, **data)
    else:
        session.info.setdefault(_MESSAGE_EVENTS, []).append((kind, data))


def announce_message_events(session: Session, kind: str, events: list[dict]) -> None:
    """announce_message_event for many messages whose assignee the caller knows (a slice of status
    callbacks): published together after commit."""
    announce_all(session, [(kind, data) for data in events])


@event.listens_for(Session, "before_commit")
def _announce_message_events(session: Session) -> None:
    if session.in_nested_transaction() or not session.info.get(_MESSAGE_EVENTS):
        return
    pending = session.info.pop(_MESSAGE_EVENTS)
    assignees: dict[int, int | None] = {}
    for chunk in chunks(list({data["conversation_id"] for _, data in pending})):
        assignees.update(session.execute(select(Conversation.id, Conversation.assignee_id)
                                         .where(Conversation.id.in_(chunk))).all())
    announce_all(session, [(kind, {**data, "assignee_id": assignees.get(data["conversation_id"])})
                           for kind, data in pending])


@event.listens_for(Session, "after_soft_rollback")
def _drop_message_events(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_MESSAGE_EVENTS, None)


BRAZIL = timezone(timedelta(hours=-3), "BRT")  # what operators read times in (no daylight saving since 2019)


class WindowClosed(InvalidInput):
    """Free text to a WhatsApp customer who has not written for 24 hours: only a template may go."""

    code = "window_closed"


class OptedOut(Conflict):
    """An operator's message to a contact who opted out of the channel's kind: refused, not stored."""

    code = "opted_out"

    def __init__(self, kind, contact: Contact, erased_number: bool = False):
        if erased_number:  # `contact` is the tombstone of an erasure (privacy/erased_numbers.py), not the one written to
            super().__init__(
                "not sent: this number belonged to {contact_name}, whose data was erased and who had opted out of "
                "{channel_label}; nothing was stored. If the number's owner asked to receive messages again, clear "
                "the opt-out on contact {contact_id}", field="channel_id", contact_name=contact.name,
                contact_id=contact.id, channel_label=kind.label)
        else:
            super().__init__("not sent: {contact_name} opted out of {channel_label}; nothing was stored. Choose "
                             "another channel, or clear the opt-out on the contact if they asked to receive messages "
                             "again", field="channel_id", contact_name=contact.name, channel_label=kind.label)
        self.channel_kind = kind.name

    def as_dict(self, lang: str | None = None) -> dict:
        return {**super().as_dict(lang), "channel_kind": self.channel_kind}


def queue_outbound(
    session: Session, *, channel: Channel, phone: str, body: str, contact: Contact | None = None,
    origin: str, author_id: int | None = None, campaign_id: int | None = None, via: str = "api",
    audit: bool = True, content_type: str = "text", content: dict | None = None,
    in_reply_to: Message | None = None, blocked_reason: Words | None = None, despite_opt_out: bool = False,
    refuse_opted_out: bool = False,
) -> Message:
    """Store an outbound message as queued (or blocked, for a contact who opted out of the channel's
    kind unless `despite_opt_out` (the confirmation of that opt-out), or with `blocked_reason`).
    `refuse_opted_out` (an operator writing to one customer): such a message is refused with
    OptedOut instead, and nothing is stored; campaigns keep their blocked recipients on record.
    Free text on a channel with a reply window (WhatsApp) is refused once the window is closed; a
    template (`content_type` "template", `content` its validated send) may always go. The caller
    commits; dispatch is enqueued only after that commit."""
    if not channel.active:
        raise InvalidInput("channel '{channel_name}' is deactivated", channel_name=channel.name, field="channel")
    kind = kind_of(channel)
    body = kind.check_body(body)
    identity = _recipient(kind, phone)
    now = utcnow()
    if kind.reply_window is not None and content_type != "template":
        _check_window(session, channel, identity, now)
    if contact is None and identity.e164:
        contact = find_by_phone(session, identity.e164)
    opted_out = kind.opted_out(contact) and not despite_opt_out
    if refuse_opted_out and opted_out:
        raise OptedOut(kind, contact)
    if not opted_out and not despite_opt_out and blocked_reason is None:
        # The number of an erased contact who had opted out, whoever it belongs to now.
        erased = erased_numbers.look_up(session, [identity.key]).blocks(identity.key, kind, content)
        if erased is not None:
            if refuse_opted_out and erased.opted_out_of_kind:
                raise OptedOut(kind, session.get(Contact, erased.tombstone_id), erased_number=True)
            blocked_reason = erased.reason
    conversation = conversation_for(session, channel.id, identity, contact)
    note_outbound(conversation, now)
    message = Message(**rows.outbound(
        kind, channel_id=channel.id, conversation_id=conversation.id, contact=contact,
        contact_id=conversation.contact_id, origin=origin, phone=identity.raw.strip(), phone_e164=identity.e164, body=body,
        now=now, author_id=author_id, campaign_id=campaign_id, content_type=content_type, content=content,
        blocked_reason=blocked_reason, despite_opt_out=despite_opt_out))
    if in_reply_to is not None:
        message.in_reply_to_id = in_reply_to.id
    session.add(message)
    session.flush()
    announce_message(session, message, "message.created")
    if audit:
        record(session, action=f"{kind.name}.send", subject_type="message", subject_id=message.id,
               actor_id=author_id, via=via, to=identity.e164 or identity.raw, channel=channel.name,
               status=message.status)
    return message


def _recipient(kind, phone: str) -> phones.PhoneIdentity:
    """Who `phone` names: a phone number, or (as a conversation key, "wa:<id>") a WhatsApp customer
    who shares no phone, on kinds that reach them."""
    user_id = identifiers.user_id_of(phone or "")
    if user_id is not None:
        if not kind.reaches_user_ids:
            raise InvalidInput("this customer is known only by a WhatsApp user id and shares no phone number: "
                               "{kind_label} cannot reach them", kind_label=kind.label, field="phone")
        return phones.PhoneIdentity(user_id, "", phone)
    try:
        return phones.identify(phone)
    except phones.PhoneNumberError as exc:
        raise InvalidInput(exc, field="phone") from None


def _check_window(session: Session, channel: Channel, identity: phones.PhoneIdentity, now: datetime) -> None:
    closes = session.scalar(select(Conversation.window_closes_at).where(Conversation.channel_id == channel.id,
                                                                        Conversation.phone_key == identity.key))
    if closes is None or closes <= now:
        since = f" (fechou em {closes.astimezone(BRAZIL).strftime('%d/%m %H:%M')})" if closes is not None else ""
        raise WindowClosed("Janela fechada — envie um modelo aprovado: o cliente não escreve no {channel_name} há "
                           "mais de 24 horas{since}, e o WhatsApp só entrega texto livre dentro da janela",
                           channel_name=channel.name, since=since,
                           field="body")


def window_seconds_left(conversation: Conversation, channel: Channel, now: datetime | None = None) -> int | None:
    """Seconds until the conversation's reply window closes (0: closed); None on kinds without one."""
    if kind_of(channel).reply_window is None:
        return None
    closes = conversation.window_closes_at
    return 0 if closes is None else max(0, int((closes - (now or utcnow())).total_seconds()))


# The dispatch path reads and writes messages as plain rows, not ORM objects, on the session's
# connection (no ORM layer around each statement): a Kolmeya request carries 1,000 of them, and
# loading, tracking and flushing 1,000 objects three times per request cost more than the
# database's own work.

def _lock_skipping_held(session: Session, ids: Select) -> list[int]:
    """The message ids `ids` selects, locked in id order (PostgreSQL; on SQLite the transaction
    already holds the write lock), leaving out those another transaction holds. Waiting for them
    is how a campaign's release and a worker's claim deadlocked: a pump that had waited for another
    pump's rows re-checked them once it committed and kept them locked while a worker claimed them.
    A statement of its own: as a subquery of the UPDATE, PostgreSQL may run it again (a LIMIT then
    lets through more rows than it says)."""
    return list(session.connection().scalars(ids.order_by(Message.id).with_for_update(skip_locked=True)))


def claim_for_dispatch(session: Session, message_ids: list[int]) -> list:
    """queued → sending: whoever flips the row owns the send; others get nothing.
    The batch reference is cleared: a claimed message without one has not been handed over yet.
    Returns the claimed rows' (id, channel_id), by id."""
    now = utcnow()
    # Rows another transaction holds are changing state, so they are not ours to send; the sweeper
    # re-queues whatever is left queued.
    claimable = _lock_skipping_held(session, select(Message.id).where(
        Message.id.in_(message_ids), Message.status == "queued",
        or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now)))
    if not claimable:
        return []
    claimed = session.connection().execute(
        update(Message)
        .where(Message.id.in_(claimable), Message.status == "queued")
        .values(status="sending", claimed_at=now, attempts=Message.attempts + 1, batch_reference=None)
        .returning(Message.id, Message.channel_id)
    ).all()
    return sorted(claimed, key=lambda row: row.id)


HANDED_OVER = (Message.id, Message.reference, Message.phone, Message.phone_e164, Message.body, Message.content_type,
               Message.content, Message.in_reply_to_id)


def hand_over(session: Session, message_ids: list[int], batch_reference: str) -> list:
    """Of these claimed messages, those still being sent, marked with the reference of the
    request about to carry them. Committed before the request goes out: if we die while it is
    out, the sweeper knows the provider may have them, and by which reference to ask. Returns
    their rows (HANDED_OVER's columns: what the request is built from), by id."""
    marked = session.connection().execute(
        update(Message).where(Message.id.in_(message_ids), Message.status == "sending")
        .values(batch_reference=batch_reference).returning(*HANDED_OVER)).all()
    return sorted(marked, key=lambda row: row.id)


@dataclass
class Answered:
    """What applying a send's answer reads and writes of a message (apply_send_outcome takes it as
    it takes a Message)."""

    id: int
    reference: str
    channel_id: int
    conversation_id: int | None
    contact_id: int | None
    direction: str
    status: str
    status_reason: str | None
    status_inferred: bool
    attempts: int
    queued_at: datetime | None  # read only: the dispatch latency's start
    sent_at: datetime | None
    failed_at: datetime | None  # the timestamps an answer can stamp (STATE_TIMESTAMP of sent, rejected, blocked)
    next_attempt_at: datetime | None
    batch_reference: str | None
    provider_message_id: str | None
    provider_request_id: str | None


_ANSWERED = tuple(getattr(Message, name) for name in Answered.__dataclass_fields__)
_ANSWER_WRITES = ("status", "status_reason", "status_inferred", "sent_at", "failed_at", "next_attempt_at",
                  "provider_message_id", "provider_request_id", "updated_at")
NOT_IN_ANSWER = Words("the provider's answer did not mention this message")


def apply_send_outcomes(session: Session, message_ids: list[int], outcomes: dict[str, SendOutcome],
                        request_id: str | None, check_at: datetime) -> list[Answered]:
    """A batch's answer applied to its messages (apply_send_outcome each), written back together
    (DriverCursor.update_by_id). A message the answer does not mention is left unknown, to be asked
    about."""
    # Locked (on PostgreSQL) from read to write: a delivery report for one of them waits its turn.
    batch = [Answered(*row) for row in session.connection().execute(
        select(*_ANSWERED).where(Message.id.in_(message_ids)).order_by(Message.id).with_for_update())]
    now = utcnow()
    for message in batch:
        outcome = outcomes.get(message.reference) or SendOutcome(message.reference, False, None, "unknown",
                                                                 NOT_IN_ANSWER)
        apply_send_outcome(session, message, outcome, request_id, check_at, now=now)
    if batch:
        driver = DriverCursor(session.connection())  # 1,000 rows a request: SQLAlchemy's binding cost more
        stamp = driver.batch_timestamps()
        driver.update_by_id("messages", _ANSWER_WRITES, [
            (m.status, m.status_reason, m.status_inferred, stamp(m.sent_at), stamp(m.failed_at),
             stamp(m.next_attempt_at), m.provider_message_id, m.provider_request_id, stamp(now), m.id) for m in batch])
    return batch


EARLIER_ATTEMPT_REASON = Words("the provider already had this message from an earlier attempt")


def apply_send_outcome(session: Session, message: Message, outcome: SendOutcome, request_id: str | None,
                       check_at: datetime, *, now: datetime | None = None) -> None:
    """What the provider answered for this message of a batch (`now`: when the answer came). An
    outcome it did not give (the message missing from its answer) leaves the message unknown, to be
    asked about at `check_at`."""
    now = now or utcnow()
    message.provider_request_id = request_id
    if outcome.provider_message_id:
        message.provider_message_id = outcome.provider_message_id
    if message.status not in ("sending", "unknown"):
        # A delivery report beat the send's answer here: it already says more than the answer.
        if outcome.accepted and message.sent_at is None:
            message.sent_at = now
    elif outcome.accepted or (outcome.duplicate and message.attempts > 1):
        # A duplicate on a retry means the provider got our earlier attempt: it was sent, once.
        _stamp(message, "sent", now, EARLIER_ATTEMPT_REASON if outcome.duplicate else None)
    elif outcome.state == "unknown":
        mark_unknown(message, outcome.reason, check_at)
    else:
        _stamp(message, outcome.state, now, outcome.reason)
    announce_message(session, message, "message.status")


def wait_for_channel(session: Session, message_ids: list[int], reason: Reason | None, *,
                     give_back_attempt: bool = False) -> list[Message]:
    """Claimed messages of a paused channel go back to the queue, saying why they wait; a send the
    provider refused for the account's sake does not count as an attempt. Returns them."""
    waiting = (Words("waiting: channel paused — {reason}", reason=as_words(reason)) if reason
               else Words("waiting: channel paused"))
    moved = list(session.scalars(select(Message).where(Message.id.in_(message_ids),
                                                       Message.status.in_(("sending", "queued")))))
    return _put_back(session, moved, waiting, None, give_back_attempt)


def hold_back(session: Session, message_ids: list[int], reason: Reason, delay_seconds: float) -> list[Message]:
    """Claimed messages not sent yet go back to the queue for `delay_seconds` (the channel is over
    its rate limit); not sent, so the attempt does not count. Returns them."""
    at = utcnow() + timedelta(seconds=delay_seconds)
    held = list(session.scalars(select(Message).where(Message.id.in_(message_ids), Message.status == "sending",
                                                      Message.batch_reference.is_(None))))
    return _put_back(session, held, Words("waiting: {reason}", reason=as_words(reason)), at, give_back_attempt=True)


def _put_back(session: Session, messages: list[Message], reason: Reason, next_attempt_at: datetime | None,
              give_back_attempt: bool) -> list[Message]:
    """Messages the provider never got go back to the queue (due at `next_attempt_at`, None: now)."""
    for message in messages:
        _stamp(message, "queued", utcnow(), reason)
        message.claimed_at = message.batch_reference = None
        message.next_attempt_at = next_attempt_at
        if give_back_attempt and message.attempts:
            message.attempts -= 1
        announce_message(session, message, "message.status")
    return messages


# --- a campaign's messages: stored `scheduled`, released to the queue while the campaign runs ------

def release_scheduled(session: Session, campaign_id: int, limit: int) -> list[int]:
    """Up to `limit` of the campaign's scheduled messages, oldest first, become queued for dispatch.
    A row is released once even when two pumps run at the same time: each skips the rows the
    other holds."""
    now = utcnow()
    batch = _lock_skipping_held(session, select(Message.id).where(
        Message.campaign_id == campaign_id, Message.status == "scheduled").limit(limit))
    if not batch:
        return []
    return list(session.connection().scalars(update(Message).where(Message.id.in_(batch), Message.status == "scheduled")
                                             .values(status="queued", queued_at=now, updated_at=now)
                                             .returning(Message.id)))


def hold_released(session: Session, campaign_id: int) -> int:
    """A paused campaign takes back what it released and no worker has claimed yet."""
    return session.execute(update(Message).where(Message.campaign_id == campaign_id, Message.status == "queued")
                           .values(status="scheduled", queued_at=None, updated_at=utcnow())
                           .execution_options(synchronize_session=False)).rowcount


def back_to_campaign(session: Session, message_ids: list[int], reason: Reason) -> list[Message]:
    """Claimed campaign messages the provider did not take go back to their paused campaign,
    scheduled, saying why; the refused try does not count. Returns them."""
    moved = list(session.scalars(select(Message).where(Message.id.in_(message_ids), Message.status == "sending",
                                                       Message.campaign_id.is_not(None))))
    waiting = Words("waiting: campaign paused — {reason}", reason=as_words(reason))
    for message in moved:
        _stamp(message, "scheduled", utcnow(), waiting)
        message.claimed_at = message.batch_reference = message.next_attempt_at = message.queued_at = None
        if message.attempts:
            message.attempts -= 1
        announce_message(session, message, "message.status")
    return moved


def cancel_unsent(session: Session, campaign_id: int, reason: Words) -> int:
    """What a cancelled campaign has not handed to the provider is cancelled; how many."""
    now = utcnow()
    return session.execute(update(Message).where(Message.campaign_id == campaign_id,
                                                 Message.status.in_(("scheduled", "queued")))
                           .values(status="cancelled", status_reason=store(reason), failed_at=now, updated_at=now)
                           .execution_options(synchronize_session=False)).rowcount


def mark_unknown(message: Message, reason: Reason, check_at: datetime | None) -> None:
    """The provider may have this message: it is not sent again before the provider has been asked
    (at `check_at`; None: it cannot be asked, only a delivery report can settle it)."""
    _stamp(message, "unknown", utcnow(), reason)
    message.next_attempt_at = check_at


def requeue_after_error(message: Message, reason: Reason, delay_seconds: float, max_attempts: int) -> bool:
    """Put a message back for a later try; after max_attempts it fails. Returns True when requeued."""
    now = utcnow()
    if message.attempts >= max_attempts:
        _stamp(message, "failed", now, Words("gave up after {attempts} attempts: {reason}",
                                             attempts=message.attempts, reason=as_words(reason)), inferred=True)
        return False
    _stamp(message, "queued", now, Words("attempt {number} failed, retrying: {reason}", number=message.attempts,
                                         reason=as_words(reason)))
    message.next_attempt_at = now + timedelta(seconds=delay_seconds)
    return True


def fail(message: Message, reason: Reason, *, inferred: bool = False) -> None:
    """`inferred`: our conclusion (e.g. we gave up), which a later report from the provider may correct."""
    _stamp(message, "failed", utcnow(), reason, inferred=inferred)


STATUS_FROM_PROVIDER = {"accepted": None, "sent": "sent", "delivered": "delivered", "read": "read", "played": "played",
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
    return StatusResult("applied" if apply_status_to(session, message, update_) else "ignored", message)


STATUS_COLUMNS = ("status", "status_inferred", "provider_message_id", "sent_at", "delivered_at", "read_at",
                  "played_at", "failed_at")  # what status_change reads of a message


def status_change(current: dict, update_: StatusUpdate, now) -> tuple[bool, dict]:
    """The rule for a status the provider reports, on a message's STATUS_COLUMNS: (applied, the
    columns to change). Not applied when it would move the message backwards (its provider id is
    still adopted). `now` is stamped as given (bound for a driver, or a datetime for the ORM)."""
    changes: dict = {}
    if update_.provider_message_id and not current["provider_message_id"]:
        changes["provider_message_id"] = update_.provider_message_id
    target = STATUS_FROM_PROVIDER.get(update_.state)
    if target is None or not moves_forward(current["status"], target, current_inferred=current["status_inferred"]):
        return False, changes
    if current["status_inferred"] and current["status"] in FINAL_FAILURES:
        changes["failed_at"] = None  # the failure we had concluded did not happen
    if current["sent_at"] is None:  # a report past "sent" says it was sent
        changes["sent_at"] = now
    column = STATE_TIMESTAMP.get(target)
    if column and column != "sent_at" and (changes[column] if column in changes else current[column]) is None:
        changes[column] = now
    reason = (update_.text or target) if target in FINAL_FAILURES else None
    if update_.source:
        reason = Words("{reason} ({source})", reason=as_words(reason), source=update_.source) if reason \
            else update_.source
    changes.update(status=target, status_reason=store(reason), status_inferred=False, provider_status_code=update_.code)
    return True, changes


def apply_status_to(session: Session, message: Message, update_: StatusUpdate) -> bool:
    """What the provider reports of this message (a status query, a stored status applied late);
    False when it would move the message backwards."""
    applied, changes = status_change({column: getattr(message, column) for column in STATUS_COLUMNS}, update_,
                                     utcnow())
    for column, value in changes.items():
        setattr(message, column, value)
    if applied:
        announce_message(session, message, "message.status")
    return applied


def confirm_sent(session: Session, message: Message, update_: StatusUpdate, reason: Reason) -> None:
    """The provider, asked after an unknown outcome, says it has this message: it was sent (once),
    and has come as far as the provider reports."""
    if update_.provider_message_id:
        message.provider_message_id = update_.provider_message_id
    attempts.settle_unknown(message, Words("the provider confirmed it had it"))
    _stamp(message, "sent", utcnow(), reason)
    if not apply_status_to(session, message, update_):
        announce_message(session, message, "message.status")


def requeue_unsent(message: Message, reason: Reason) -> None:
    """The provider, asked after an unknown outcome, has no record of this message: send it again."""
    attempts.settle_unknown(message, Words("the provider has no record of it: it will be sent again"))
    _stamp(message, "queued", utcnow(), reason)
    message.next_attempt_at = None


def relink_inbound(session: Session) -> int:
    """Attach inbound messages that arrived before their contact existed. Returns how many were linked.

    Set-based: after a large contact import there can be thousands of such messages."""
    orphans = session.execute(select(Message.id, Message.phone_e164, Message.conversation_id)
                              .where(Message.direction == "in", Message.contact_id.is_(None),
                                     Message.phone_e164 != "")).all()  # "": a WhatsApp user id, not a phone
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
