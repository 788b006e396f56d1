"""Merging two contacts that are one customer: the other contact's history moves to the survivor,
and the other is removed.

In one transaction:
* the survivor keeps its values and takes the other's where its own are empty (phone, mobile,
  email, CPF, notes; a number goes to its free phone field if its own is taken, so it still
  reaches the survivor); two different CPFs are two people, and are refused;
* opt-outs are combined: an opt-out of either is the survivor's (never lost by a merge);
* messages (campaign recipients included), conversations and their events point at the survivor;
  two conversations on the same channel become one, the older, with the other's messages and
  events, the unread counts added up and the latest activity, inbound message and WhatsApp window;
* the rows of per-contact tables (PER_CONTACT_TABLES: tags, channel identifiers…) move;
* an audit entry records both ids, who merged, what moved and the other's values as they were.

`plan` says all of this without changing anything (the CLI shows it before asking; the API's GET).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from sqlalchemy import Table, and_, delete, exists, func, select, update
from sqlalchemy.orm import Session

from contact_center.audit.service import record
from contact_center.auth.models import User
from contact_center.contacts import blacklist
from contact_center.contacts.models import Contact, ContactFieldValue, ContactIdentifier, ContactTag
from contact_center.db import utcnow
from contact_center.errors import Conflict, InvalidInput, NotFound
from contact_center.events import announce
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.messaging.models import Message

log = logging.getLogger(__name__)

# Tables whose rows belong to one contact, with the columns a contact has one row per value of.
# The merged contact's rows move to the survivor unless the survivor has a row with the same
# values there (then the survivor's stays and the other's goes with the merged contact).
# A new per-contact table is one more line here.
PER_CONTACT_TABLES: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (ContactTag.__table__, ("key",)),
    (ContactIdentifier.__table__, ()),  # (kind, value) is unique across contacts: all of them move
    (ContactFieldValue.__table__, ("field_id",)),  # the survivor's own value of a field stays
)

# Taken from the other contact when the survivor's is empty; a phone brings its E.164 and key.
PHONE_FIELDS = ("mobile", "phone")
FILLED_FIELDS = (*PHONE_FIELDS, "email", "document", "notes")
OPT_OUT_FLAGS = ("opt_out_sms", "opt_out_whatsapp", "opt_out_marketing")
_COLUMNS = {name: (name, f"{name}_e164", f"{name}_key") if name in ("phone", "mobile") else (name,)
            for name in FILLED_FIELDS}
_SNAPSHOT = ("name", *(column for columns in _COLUMNS.values() for column in columns), *OPT_OUT_FLAGS)


@dataclass
class MergePlan:
    """What merging `other` into `survivor` does (or did)."""

    survivor_id: int
    survivor_name: str
    other_id: int
    other_name: str
    taken: dict[str, str] = field(default_factory=dict)  # survivor's empty field → the other's value it takes
    not_kept: dict[str, str] = field(default_factory=dict)  # other's field → its value, the survivor's staying
    opt_outs_gained: list[str] = field(default_factory=list)
    messages: int = 0
    conversations: int = 0  # the other's conversations, now the survivor's
    conversations_joined: int = 0  # of those, joined to a conversation on the same channel
    rows: dict[str, int] = field(default_factory=dict)  # per-contact table → rows that move

    def as_dict(self) -> dict:
        return asdict(self)


def plan(session: Session, survivor_id: int, other_id: int) -> MergePlan:
    """What a merge would do; changes nothing. Raises what `merge` would refuse."""
    survivor, other = _pair(session, survivor_id, other_id, lock=False)
    result = _fields_plan(survivor, other)
    result.messages = session.scalar(select(func.count()).where(Message.contact_id == other.id)) or 0
    groups = _conversation_groups(session, survivor.id, other.id)
    result.conversations = sum(1 for group in groups.values() for c in group if c.contact_id == other.id)
    result.conversations_joined = sum(len(group) - 1 for group in groups.values())
    for table, unique in PER_CONTACT_TABLES:
        result.rows[table.name] = session.scalar(select(func.count()).select_from(table)
                                                 .where(_movable(table, unique, survivor.id, other.id))) or 0
    return result


def merge(session: Session, survivor_id: int, other_id: int, *, actor: User | None, via: str) -> MergePlan:
    """Merge contact `other_id` into `survivor_id` (see the module docstring); flushes, the caller commits."""
    survivor, other = _pair(session, survivor_id, other_id, lock=True)
    result = plan(session, survivor.id, other.id)
    phone_moves, _ = _phone_moves(survivor, other)
    snapshot = {name: getattr(other, name) for name in _SNAPSHOT}
    was_sms_opted_out = bool(survivor.opt_out_sms)

    touched = _join_conversations(session, survivor.id, other.id)
    session.execute(update(Message).where(Message.contact_id == other.id).values(contact_id=survivor.id))
    session.execute(update(ConversationEvent).where(ConversationEvent.contact_id == other.id)
                    .values(contact_id=survivor.id))
    for table, unique in PER_CONTACT_TABLES:
        session.execute(update(table).where(_movable(table, unique, survivor.id, other.id))
                        .values(contact_id=survivor.id))

    # The other goes first: its CPF is unique and may be the survivor's next.
    session.expunge(other)
    session.execute(delete(Contact).where(Contact.id == other.id))  # what did not move goes with it (cascade)
    for name in result.taken:
        source = phone_moves.get(name, name)
        for target_column, source_column in zip(_COLUMNS[name], _COLUMNS[source]):
            setattr(survivor, target_column, snapshot[source_column])
    for flag in result.opt_outs_gained:
        setattr(survivor, flag, True)
    survivor.updated_at = utcnow()
    session.flush()
    session.expire(survivor, ["tag_rows"])

    record(session, action="contact.merge", subject_type="contact", subject_id=survivor.id,
           actor_id=actor.id if actor else None, via=via, merged_id=other.id, merged=snapshot,
           moved={"messages": result.messages, "conversations": result.conversations,
                  "conversations_joined": result.conversations_joined, **result.rows},
           taken=sorted(result.taken), not_kept=sorted(result.not_kept), opt_outs_gained=result.opt_outs_gained)
    if survivor.opt_out_sms and (not was_sms_opted_out or {"phone", "mobile"} & result.taken.keys()):
        blacklist.push_after_commit(session, [survivor.id])  # numbers it now has, or its new opt-out
    for conversation_id, status, assignee_id, previous_assignee_id in touched:
        announce(session, "conversation.updated", conversation_id=conversation_id, status=status,
                 assignee_id=assignee_id, previous_assignee_id=previous_assignee_id,
                 change="contact_updated", event_id=None, actor_id=actor.id if actor else None)
    log.info("contact %d merged into contact %d by %s: %d message(s), %d conversation(s) (%d joined), %s",
             other.id, survivor.id, actor.username if actor else via, result.messages, result.conversations,
             result.conversations_joined, ", ".join(f"{n} {t}" for t, n in result.rows.items()))
    return result


def _pair(session: Session, survivor_id: int, other_id: int, *, lock: bool) -> tuple[Contact, Contact]:
    if survivor_id == other_id:
        raise InvalidInput("o contato {survivor_id} não pode ser unificado com ele mesmo: informe outro contato",
                           survivor_id=survivor_id,
                           field="other_id")
    query = select(Contact).where(Contact.id.in_((survivor_id, other_id))).order_by(Contact.id)
    if lock:  # PostgreSQL: a concurrent edit or merge of either waits for this one (locked in id order)
        query = query.with_for_update()
    found = {contact.id: contact for contact in session.scalars(query)}
    for contact_id, where in ((survivor_id, "survivor_id"), (other_id, "other_id")):
        if contact_id not in found:
            raise NotFound("não há contato com o id {contact_id}", contact_id=contact_id, field=where)
    survivor, other = found[survivor_id], found[other_id]
    if survivor.document and other.document and survivor.document != other.document:
        raise Conflict("os contatos {survivor_id} ({survivor_name}) e {other_id} ({other_name}) têm CPFs diferentes: "
                       "são duas pessoas e não podem ser unificados",
                       survivor_id=survivor.id, survivor_name=survivor.name, other_id=other.id, other_name=other.name, field="other_id")
    return survivor, other


def _phone_moves(survivor: Contact, other: Contact) -> tuple[dict[str, str], list[str]]:
    """Which of the other's numbers fill which of the survivor's empty phone fields ({survivor's
    field: other's field}; the same field first, else the one left free, so a number is not lost
    for being in the other field), and the numbers there is no room for."""
    held = {survivor.phone_key, survivor.mobile_key} - {None}
    numbers = [name for name in PHONE_FIELDS if getattr(other, name) and getattr(other, f"{name}_key") not in held]
    free = [name for name in PHONE_FIELDS if not getattr(survivor, name)]
    moves = {name: name for name in numbers if name in free}
    rest = [name for name in numbers if name not in moves]
    room = [name for name in free if name not in moves]
    moves.update(zip(room, rest))
    return moves, rest[len(room):]


def _fields_plan(survivor: Contact, other: Contact) -> MergePlan:
    result = MergePlan(survivor.id, survivor.name, other.id, other.name)
    moves, no_room = _phone_moves(survivor, other)
    result.taken.update((target, getattr(other, source)) for target, source in moves.items())
    result.not_kept.update((name, getattr(other, name)) for name in no_room)
    for name in FILLED_FIELDS:
        if name in PHONE_FIELDS:
            continue
        mine, theirs = getattr(survivor, name), getattr(other, name)
        if theirs and not mine:
            result.taken[name] = theirs
        elif theirs and mine != theirs:
            result.not_kept[name] = theirs
    result.opt_outs_gained = [flag for flag in OPT_OUT_FLAGS if getattr(other, flag) and not getattr(survivor, flag)]
    return result


def _movable(table: Table, unique: tuple[str, ...], survivor_id: int, other_id: int):
    """The other's rows of `table` that move: those the survivor has no row with the same `unique` values of."""
    condition = table.c.contact_id == other_id
    if unique:
        mine = table.alias("mine")
        condition = and_(condition, ~exists().where(mine.c.contact_id == survivor_id,
                                                    *(mine.c[column] == table.c[column] for column in unique)))
    return condition


def _conversation_groups(session: Session, survivor_id: int, other_id: int) -> dict[int, list[Conversation]]:
    """The two contacts' conversations by channel, oldest first, on the channels where the other has one."""
    groups: dict[int, list[Conversation]] = {}
    for conversation in session.scalars(select(Conversation)
                                        .where(Conversation.contact_id.in_((survivor_id, other_id)))
                                        .order_by(Conversation.created_at, Conversation.id)):
        groups.setdefault(conversation.channel_id, []).append(conversation)
    return {channel: group for channel, group in groups.items() if any(c.contact_id == other_id for c in group)}


def _join_conversations(session: Session, survivor_id: int, other_id: int) -> list[tuple]:
    """Every conversation of the other becomes the survivor's; on a channel where both have one,
    the older takes the others' messages and events and they are removed. Returns what to
    announce: (conversation id, status, assignee id, previous assignee id)."""
    touched = []
    for group in _conversation_groups(session, survivor_id, other_id).values():
        kept, joined = group[0], group[1:]
        before = kept.assignee_id
        open_ones = [c for c in group if c.status != "done"]
        lead = max(open_ones, key=lambda c: c.last_activity_at) if open_ones else kept
        kept.status, kept.assignee_id = lead.status, lead.assignee_id
        kept.unread_count = sum(c.unread_count for c in group)
        kept.last_activity_at = max(c.last_activity_at for c in group)
        kept.last_inbound_at = max((c.last_inbound_at for c in group if c.last_inbound_at), default=None)
        windows = [c for c in group if c.window_closes_at]
        if windows:
            latest = max(windows, key=lambda c: c.window_closes_at)
            kept.window_closes_at, kept.reminded_window_at = latest.window_closes_at, latest.reminded_window_at
        kept.contact_id = survivor_id
        for gone in joined:
            session.execute(update(Message).where(Message.conversation_id == gone.id).values(conversation_id=kept.id))
            session.execute(update(ConversationEvent).where(ConversationEvent.conversation_id == gone.id)
                            .values(conversation_id=kept.id))
            touched.append((gone.id, gone.status, gone.assignee_id, gone.assignee_id))  # its row leaves the lists
            session.delete(gone)
        session.flush()
        touched.append((kept.id, kept.status, kept.assignee_id, before))
    return touched
