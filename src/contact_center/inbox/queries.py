"""What operators read: the inbox list (filters, search, keyset pages) and a customer's timeline.

The list pages by (last_activity_at, id) instead of OFFSET, so the thousandth page costs what the
first does and a conversation moving to the top while someone pages does not shift the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from contact_center import phones
from contact_center.auth.models import User
from contact_center.channels.models import Channel
from contact_center.contacts.models import Contact
from contact_center.db import ContainsText
from contact_center.errors import InvalidInput
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.inbox.visibility import visible_conversations, visible_messages
from contact_center.messaging.models import Message

VIEWS = ("all", "mine", "unassigned")
STATUSES = ("open", "new", "assigned", "done", "any")  # open = new or assigned
MAX_PAGE = 200
MAX_TIMELINE = 500


@dataclass(frozen=True)
class InboxFilter:
    view: str = "all"
    status: str = "open"
    channel_id: int | None = None
    search: str = ""

    def __post_init__(self):
        if self.view not in VIEWS:
            raise InvalidInput("unknown view '{view}'; expected one of {views}", field="view", view=self.view,
                               views=", ".join(VIEWS))
        if self.status not in STATUSES:
            raise InvalidInput("unknown status '{status}'; expected one of {statuses}", field="status",
                               status=self.status, statuses=", ".join(STATUSES))
        if len(self.search) > 100:
            raise InvalidInput("search is limited to 100 characters", field="q")


@dataclass(frozen=True)
class ConversationRow:
    id: int
    status: str
    channel_id: int
    channel_name: str
    channel_kind: str
    contact_id: int | None
    contact_name: str | None
    phone_e164: str
    assignee_id: int | None
    assignee_name: str | None
    unread_count: int
    last_activity_at: datetime
    last_inbound_at: datetime | None
    window_closes_at: datetime | None = None  # WhatsApp: free text until then
    channel_paused_reason: str | None = None  # nothing goes out on the channel: why
    last_body: str | None = None
    last_direction: str | None = None
    last_status: str | None = None

    @property
    def title(self) -> str:
        return self.contact_name or self.phone_e164


@dataclass(frozen=True)
class InboxPage:
    rows: list[ConversationRow]
    total: int
    next_cursor: str | None


def _conditions(user: User, filter_: InboxFilter) -> list:
    conditions = []
    visible = visible_conversations(user)
    if visible is not None:
        conditions.append(visible)
    if filter_.view == "mine":
        conditions.append(Conversation.assignee_id == user.id)
    elif filter_.view == "unassigned":
        conditions.append(Conversation.assignee_id.is_(None))
    if filter_.status == "open":
        conditions.append(Conversation.status.in_(("new", "assigned")))
    elif filter_.status != "any":
        conditions.append(Conversation.status == filter_.status)
    if filter_.channel_id is not None:
        conditions.append(Conversation.channel_id == filter_.channel_id)
    if filter_.search.strip():
        conditions.append(_search(filter_.search.strip()))
    return conditions


_DIGITS = re.compile(r"\D")


def _search(text: str):
    """A contact's name, or a phone in any written form (a fragment of at least 4 digits too)."""
    matches = [Conversation.contact_id.in_(select(Contact.id).where(ContainsText(Contact.name, text)))]
    try:
        matches.append(Conversation.phone_key == phones.match_key(text))
    except phones.PhoneNumberError:
        pass
    digits = _DIGITS.sub("", text)
    if len(digits) >= 4 and len(digits) >= len(text.replace(" ", "")) // 2:
        matches.append(Conversation.phone_e164.contains(digits))
    return or_(*matches)


def encode_cursor(row: ConversationRow) -> str:
    return f"{row.last_activity_at.timestamp():.6f}_{row.id}"


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    from datetime import UTC

    try:
        stamp, _, ident = cursor.partition("_")
        return datetime.fromtimestamp(float(stamp), UTC), int(ident)
    except (ValueError, OverflowError, OSError):
        raise InvalidInput("this page link is malformed; start again from the first page", field="before") from None


_assignee = aliased(User)


def _row_query():
    return (select(Conversation.id, Conversation.status, Conversation.channel_id, Channel.name.label("channel_name"),
                   Channel.kind.label("channel_kind"), Conversation.contact_id, Contact.name.label("contact_name"),
                   Conversation.phone_e164, Conversation.assignee_id, _assignee.name.label("assignee_name"),
                   Conversation.unread_count, Conversation.last_activity_at, Conversation.last_inbound_at,
                   Conversation.window_closes_at, Channel.paused_reason.label("channel_paused_reason"))
            .join(Channel, Channel.id == Conversation.channel_id)
            .outerjoin(Contact, Contact.id == Conversation.contact_id)
            .outerjoin(_assignee, _assignee.id == Conversation.assignee_id))


def count_conversations(session: Session, user: User, filter_: InboxFilter = InboxFilter()) -> int:
    return session.scalar(select(func.count()).select_from(Conversation).where(*_conditions(user, filter_))) or 0


def list_conversations(session: Session, user: User, filter_: InboxFilter = InboxFilter(), *,
                       before: str | None = None, limit: int = 50) -> InboxPage:
    """A page of the conversations `user` may see, newest activity first, with each one's last message."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit must be between 1 and {MAX_PAGE}", MAX_PAGE=MAX_PAGE, field="limit")
    conditions = _conditions(user, filter_)
    total = count_conversations(session, user, filter_)
    query = _row_query().where(*conditions)
    if before:
        at, ident = _decode_cursor(before)
        query = query.where(or_(Conversation.last_activity_at < at,
                                and_(Conversation.last_activity_at == at, Conversation.id < ident)))
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit + 1)
    found = session.execute(query).all()
    rows = _with_last_messages(session, found[:limit])
    return InboxPage(rows, total, encode_cursor(rows[-1]) if len(found) > limit else None)


def conversation_row(session: Session, user: User, conversation_id: int,
                     filter_: InboxFilter | None = None) -> ConversationRow | None:
    """One conversation as the list shows it; None when it is not visible to `user` or not in `filter_`."""
    conditions = _conditions(user, filter_ or InboxFilter(status="any"))
    found = session.execute(_row_query().where(Conversation.id == conversation_id, *conditions)).all()
    rows = _with_last_messages(session, found)
    return rows[0] if rows else None


def _with_last_messages(session: Session, found) -> list[ConversationRow]:
    if not found:
        return []
    ids = [row.id for row in found]
    latest = (select(Message.id).where(Message.conversation_id == Conversation.id)
              .order_by(Message.created_at.desc(), Message.id.desc()).limit(1).correlate(Conversation)
              .scalar_subquery())
    last_ids = session.execute(select(Conversation.id, latest.label("message_id"))
                               .where(Conversation.id.in_(ids))).all()
    by_message = {r.message_id: r.id for r in last_ids if r.message_id is not None}
    last: dict[int, tuple] = {}
    if by_message:
        for message in session.execute(select(Message.id, Message.body, Message.direction, Message.status)
                                       .where(Message.id.in_(by_message))):
            last[by_message[message.id]] = (message.body, message.direction, message.status)
    rows = []
    for row in found:
        body, direction, status = last.get(row.id, (None, None, None))
        rows.append(ConversationRow(**row._asdict(), last_body=body, last_direction=direction, last_status=status))
    return rows


def unread_total(session: Session, user: User) -> int:
    """Unread customer messages in the open conversations `user` may see (the badge in the header)."""
    conditions = [Conversation.status.in_(("new", "assigned")), Conversation.unread_count > 0]
    visible = visible_conversations(user)
    if visible is not None:
        conditions.append(visible)
    return session.scalar(select(func.coalesce(func.sum(Conversation.unread_count), 0)).where(*conditions)) or 0


# --- the timeline ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MessageEntry:
    message: Message
    channel_name: str
    channel_kind: str
    author_name: str | None
    kind: str = "message"

    @property
    def at(self) -> datetime:
        return self.message.created_at


@dataclass(frozen=True)
class EventEntry:
    event_id: int | None
    change: str  # taken, released, transferred, assigned, closed, reopened, contact_linked, reopened_by_customer
    at: datetime
    conversation_id: int
    actor_name: str | None
    assignee_name: str | None
    previous_assignee_name: str | None
    contact_name: str | None = None
    kind: str = "event"


@dataclass
class Timeline:
    entries: list[MessageEntry | EventEntry] = field(default_factory=list)
    has_older: bool = False
    oldest_message_id: int | None = None
    scope: list[int] = field(default_factory=list)  # the conversations it covers (scope_of)


def scope_of(session: Session, conversation: Conversation, user: User) -> list[int]:
    """The conversations whose messages make this customer's timeline: every channel, one history,
    as far as `user` may see it (another agent's conversation with the same customer is theirs)."""
    if conversation.contact_id is not None:
        where = or_(Conversation.contact_id == conversation.contact_id, Conversation.id == conversation.id)
    else:
        where = Conversation.phone_key == conversation.phone_key
    visible = visible_conversations(user)
    return list(session.scalars(select(Conversation.id).where(where, *([visible] if visible is not None else []))))


def _in_timeline(conversation: Conversation, scope: list[int], user: User):
    """The SQL condition for the messages of this customer's timeline that `user` may see."""
    where = Message.conversation_id.in_(scope)
    if conversation.contact_id is not None:
        visible = visible_messages(user)
        of_contact = Message.contact_id == conversation.contact_id
        where = or_(where, of_contact if visible is None else and_(of_contact, visible))
    return where


def timeline(session: Session, conversation: Conversation, user: User, *, before_id: int | None = None,
             limit: int = 100) -> Timeline:
    """The customer's messages on every channel and the conversations' status changes, oldest first;
    `before_id` pages back from a message id."""
    if not 1 <= limit <= MAX_TIMELINE:
        raise InvalidInput("limit must be between 1 and {MAX_TIMELINE}", MAX_TIMELINE=MAX_TIMELINE, field="limit")
    scope = scope_of(session, conversation, user)
    where = _in_timeline(conversation, scope, user)
    author = aliased(User)
    query = (select(Message, Channel.name, Channel.kind, author.name)
             .join(Channel, Channel.id == Message.channel_id)
             .outerjoin(author, author.id == Message.author_id)
             .where(where))
    if before_id is not None:
        pivot = session.get(Message, before_id)
        if pivot is None or session.scalar(select(Message.id).where(Message.id == before_id, where)) is None:
            raise InvalidInput("no message with id {before_id} in this timeline", before_id=before_id, field="before")
        query = query.where(or_(Message.created_at < pivot.created_at,
                                and_(Message.created_at == pivot.created_at, Message.id < pivot.id)))
    found = session.execute(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)).all()
    has_older = len(found) > limit
    messages = [MessageEntry(m, channel_name, channel_kind, author_name)
                for m, channel_name, channel_kind, author_name in reversed(found[:limit])]
    since = messages[0].message.created_at if has_older and messages else None
    until = pivot.created_at if before_id is not None else None
    events = _events(session, scope, since, until)
    entries = _merge(messages, events)
    return Timeline(entries, has_older, messages[0].message.id if messages else None, scope)


def _events(session: Session, scope: list[int], since: datetime | None, until: datetime | None,
            event_id: int | None = None) -> list[EventEntry]:
    actor, assignee, previous = aliased(User), aliased(User), aliased(User)
    query = (select(ConversationEvent, actor.name, assignee.name, previous.name, Contact.name)
             .outerjoin(actor, actor.id == ConversationEvent.actor_id)
             .outerjoin(assignee, assignee.id == ConversationEvent.assignee_id)
             .outerjoin(previous, previous.id == ConversationEvent.previous_assignee_id)
             .outerjoin(Contact, Contact.id == ConversationEvent.contact_id)
             .where(ConversationEvent.conversation_id.in_(scope)))
    if since is not None:
        query = query.where(ConversationEvent.at >= since)
    if until is not None:
        query = query.where(ConversationEvent.at < until)
    if event_id is not None:
        query = query.where(ConversationEvent.id == event_id)
    return [EventEntry(e.id, e.kind, e.at, e.conversation_id, actor_name, assignee_name, previous_name, contact_name)
            for e, actor_name, assignee_name, previous_name, contact_name
            in session.execute(query.order_by(ConversationEvent.at, ConversationEvent.id))]


def _merge(messages: list[MessageEntry], events: list[EventEntry]) -> list[MessageEntry | EventEntry]:
    """Both lists in time order, plus the reopenings customers cause: the first message a customer
    sends after a conversation was closed reopens it (inbox.service.open_conversation)."""
    merged: list[MessageEntry | EventEntry] = []
    closed: set[int] = set()
    i = j = 0
    while i < len(messages) or j < len(events):
        take_event = j < len(events) and (i >= len(messages) or events[j].at <= messages[i].message.created_at)
        if take_event:
            event = events[j]
            j += 1
            if event.change == "closed":
                closed.add(event.conversation_id)
            elif event.change in ("reopened", "taken", "assigned", "transferred", "released"):
                closed.discard(event.conversation_id)
            merged.append(event)
            continue
        entry = messages[i]
        i += 1
        message = entry.message
        if message.direction == "in" and message.conversation_id in closed:
            closed.discard(message.conversation_id)
            merged.append(EventEntry(None, "reopened_by_customer", message.created_at, message.conversation_id,
                                     None, None, None))
        merged.append(entry)
    return merged


# --- a contact's history (the contact page) ----------------------------------------------------------

def contact_conversations(session: Session, user: User, contact_id: int) -> list[ConversationRow]:
    """The contact's conversations on every channel that `user` may see, newest activity first."""
    query = (_row_query().where(Conversation.contact_id == contact_id, *_conditions(user, InboxFilter(status="any")))
             .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(MAX_PAGE))
    return _with_last_messages(session, session.execute(query).all())


def contact_messages(session: Session, user: User, contact_id: int, *, before_id: int | None = None,
                     limit: int = 50) -> tuple[list[MessageEntry], bool]:
    """Every message of the contact on every channel, newest first, as far as `user` may see
    (visibility.py); `before_id` pages on from a message. Returns (messages, whether there are older)."""
    if not 1 <= limit <= MAX_TIMELINE:
        raise InvalidInput("limit must be between 1 and {MAX_TIMELINE}", MAX_TIMELINE=MAX_TIMELINE, field="limit")
    visible = visible_messages(user)
    where = [Message.contact_id == contact_id, *([visible] if visible is not None else [])]
    author = aliased(User)
    query = (select(Message, Channel.name, Channel.kind, author.name)
             .join(Channel, Channel.id == Message.channel_id)
             .outerjoin(author, author.id == Message.author_id)
             .where(*where))
    if before_id is not None:
        pivot = session.execute(select(Message.id, Message.created_at).where(Message.id == before_id, *where)).first()
        if pivot is None:
            raise InvalidInput("não há mensagem {before_id} no histórico deste contato",
                               before_id=before_id, field="before")
        query = query.where(or_(Message.created_at < pivot.created_at,
                                and_(Message.created_at == pivot.created_at, Message.id < pivot.id)))
    found = session.execute(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)).all()
    return [MessageEntry(*row) for row in found[:limit]], len(found) > limit


def message_entry(session: Session, conversation: Conversation, message_id: int, user: User) -> MessageEntry | None:
    """One message of this conversation's timeline (for live updates); None when it is not part of
    it, or not for `user` to see."""
    author = aliased(User)
    found = session.execute(select(Message, Channel.name, Channel.kind, author.name)
                            .join(Channel, Channel.id == Message.channel_id)
                            .outerjoin(author, author.id == Message.author_id)
                            .where(Message.id == message_id,
                                   _in_timeline(conversation, scope_of(session, conversation, user), user))).first()
    return None if found is None else MessageEntry(found[0], found[1], found[2], found[3])


def event_entry(session: Session, conversation: Conversation, event_id: int, user: User) -> EventEntry | None:
    entries = _events(session, scope_of(session, conversation, user), None, None, event_id)
    return entries[0] if entries else None
