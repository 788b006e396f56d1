"""Bulk sends: a template to many recipients, stored as one message row each, dispatched in batches.

Rows are written with Core inserts a chunk at a time (100k recipients in seconds, flat memory);
each chunk commits before its dispatch job is enqueued, so nothing accepted is ever lost.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from contact_center import phones
from contact_center.audit.service import record
from contact_center.auth.models import User
from contact_center.campaigns.models import Campaign
from contact_center.channels.kinds import ChannelKind, kind_of
from contact_center.channels.models import Channel
from contact_center.contacts.models import Contact
from contact_center.contacts.service import candidates_by_key, pick_contact, search_filter
from contact_center.db import READ_ONLY, transaction, utcnow
from contact_center.errors import InvalidInput, NotFound
from contact_center.inbox.service import open_conversations
from contact_center.messaging.models import Message
from contact_center.messaging import rows
from contact_center.settings import Settings
from contact_center.templates.rendering import TemplateError
from contact_center.templates.service import renderer
from contact_center.unit_of_work import after_commit

log = logging.getLogger(__name__)
CHUNK = 1000
PREVIEW_COUNT = 5


@dataclass
class Recipient:
    phone: str  # as written
    contact: Contact  # a stored contact, or a transient one built from a CSV row (never saved)
    where: str = ""  # how to point at it in a report: "contact 12", "line 7"
    error: str | None = None  # why it cannot be sent, found while reading the audience


@dataclass
class Rejected:
    where: str  # "contact 12" or "line 7"
    reason: str


@dataclass
class BulkPlan:
    """What a bulk send would do, computed over every recipient before anything is stored."""

    recipients: int = 0
    sendable: int = 0
    opted_out: int = 0
    segments: int = 0
    preview: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    price_per_segment: Decimal | None = None

    @property
    def estimated_cost(self) -> Decimal | None:
        return None if self.price_per_segment is None else self.price_per_segment * self.segments


# --- audiences -----------------------------------------------------------------------------------

def contacts_by_ids(session: Session, ids: list[int]) -> Iterator[Recipient]:
    unique_ids = list(dict.fromkeys(ids))
    found: set[int] = set()
    for start in range(0, len(unique_ids), CHUNK):
        for contact in session.scalars(select(Contact).where(Contact.id.in_(unique_ids[start:start + CHUNK]))):
            found.add(contact.id)
            yield Recipient(contact.mobile or contact.phone or "", contact, f"contact {contact.id}")
    missing = [i for i in unique_ids if i not in found]
    if missing:
        raise NotFound(f"no contact with id {', '.join(map(str, missing[:10]))}"
                       f"{' and others' if len(missing) > 10 else ''}")


def contacts_matching(session: Session, search: str | None) -> Iterator[Recipient]:
    """Every contact (or those matching `search`), by id, read in chunks."""
    last_id = 0
    while True:
        query = select(Contact).where(Contact.id > last_id).order_by(Contact.id).limit(CHUNK)
        if search and search.strip():
            query = query.where(search_filter(search.strip()))
        chunk = list(session.scalars(query))
        if not chunk:
            return
        for contact in chunk:
            yield Recipient(contact.mobile or contact.phone or "", contact, f"contact {contact.id}")
        last_id = chunk[-1].id
        session.expunge_all()


def recipients_from_csv(session: Session, text: str | io.TextIOBase) -> Iterator[Recipient]:
    """Rows of `phone[,name]` (header optional); a known phone uses its contact, others a transient one."""
    stream = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.reader(stream, delimiter=";" if ";" in (first := stream.readline()) else ",")
    rows = [first] if first else []
    header = next(csv.reader(rows, delimiter=reader.dialect.delimiter), [])
    columns = [h.strip().lower() for h in header]
    phone_column = next((i for i, h in enumerate(columns) if h in ("phone", "telefone", "celular", "mobile")), None)
    name_column = next((i for i, h in enumerate(columns) if h in ("name", "nome")), None)
    if phone_column is None:  # no header: the first row is data
        phone_column, name_column = 0, 1
        reader = csv.reader(io.StringIO(first + stream.read()), delimiter=reader.dialect.delimiter)
        line = 0
    else:
        line = 1
    rows: list[tuple[int, str, str]] = []
    for row in reader:
        line += 1
        if not any(cell.strip() for cell in row):
            continue
        phone = row[phone_column].strip() if len(row) > phone_column else ""
        name = row[name_column].strip() if name_column is not None and len(row) > name_column else ""
        rows.append((line, phone, name))
        if len(rows) == CHUNK:
            yield from _csv_recipients(session, rows)
            rows = []
    yield from _csv_recipients(session, rows)


def _csv_recipients(session: Session, rows: list[tuple[int, str, str]]) -> Iterator[Recipient]:
    """find_by_phone's rule for a chunk of CSV rows at once: one query for the candidates, one for
    the contacts chosen."""
    identities: list[phones.PhoneIdentity | str] = []
    for _, phone, _ in rows:
        try:
            identities.append(phones.identify(phone))
        except phones.PhoneNumberError as exc:
            identities.append(str(exc))
    candidates = candidates_by_key(session.connection(), list({i.key for i in identities if not isinstance(i, str)}))
    chosen = {}
    for identity in identities:
        if not isinstance(identity, str):
            picked = pick_contact(identity, candidates.get(identity.key, []))
            if picked is not None:
                chosen[identity.key] = picked.id
    ids = list(set(chosen.values()))
    contacts = {c.id: c for start in range(0, len(ids), CHUNK)
                for c in session.scalars(select(Contact).where(Contact.id.in_(ids[start:start + CHUNK])))}
    for (line, phone, name), identity in zip(rows, identities):
        if isinstance(identity, str):
            yield Recipient(phone, Contact(name=name), f"line {line}", error=identity)
            continue
        contact = contacts.get(chosen.get(identity.key))
        yield Recipient(phone, contact or Contact(name=name or phone, mobile=phone), f"line {line}")


# --- planning and storing ------------------------------------------------------------------------

@dataclass
class _Row:
    recipient: Recipient
    identity: phones.PhoneIdentity
    text: str


def _prepare(recipients: Iterable[Recipient], render: Callable[[Contact], str], plan: BulkPlan,
             kind: ChannelKind) -> Iterator[_Row]:
    for recipient in recipients:
        plan.recipients += 1
        contact = recipient.contact
        where = recipient.where or recipient.phone
        if recipient.error:
            plan.rejected.append(Rejected(where, recipient.error))
            continue
        if not recipient.phone:
            plan.rejected.append(Rejected(where, "has no phone or mobile"))
            continue
        try:
            identity = phones.identify(recipient.phone)
            text = render(contact)
        except (phones.PhoneNumberError, TemplateError) as exc:
            plan.rejected.append(Rejected(where, str(exc)))
            continue
        if not text or len(text) > kind.max_body_characters:
            plan.rejected.append(Rejected(where, "the rendered message is empty" if not text else
                                          f"the rendered message has {len(text)} characters "
                                          f"(limit {kind.max_body_characters})"))
            continue
        measure = kind.measure(text)
        if kind.opted_out(contact):
            plan.opted_out += 1
        else:
            plan.sendable += 1
            plan.segments += measure.segments
        if len(plan.preview) < PREVIEW_COUNT:
            plan.preview.append({"to": identity.e164, "name": contact.name, "text": text, "segments": measure.segments})
        yield _Row(recipient, identity, text)


def plan_bulk(recipients: Iterable[Recipient], *, body: str, channel: Channel, user: User | None,
              settings: Settings) -> BulkPlan:
    """Render everything without storing: the preview, counts and cost the operator confirms."""
    plan = BulkPlan(price_per_segment=_price(channel))
    for _ in _prepare(recipients, renderer(body, user, settings), plan, _bulk_kind(channel)):
        pass
    return plan


def _bulk_kind(channel: Channel) -> ChannelKind:
    kind = kind_of(channel)
    if not kind.bulk_free_text:
        raise InvalidInput(f"a bulk send on {kind.label} needs an approved template, not free text",
                           field="channel_id")
    return kind


def _price(channel: Channel) -> Decimal | None:
    value = channel.settings.get("price_per_segment")
    return Decimal(str(value)) if value not in (None, "") else None


def start_bulk(
    session_factory: sessionmaker[Session], recipients_source: Callable[[Session], Iterable[Recipient]], *,
    name: str, body: str, channel_id: int, template_id: int | None, user: User | None, settings: Settings,
    enqueue: Callable[[list[int]], None], via: str = "api", progress: Callable[[int], None] | None = None,
) -> tuple[Campaign, BulkPlan]:
    """Store one message per recipient (chunk by chunk, each committed before its dispatch job).

    Opens its own transactions: a caller holding one must commit it first (on SQLite it would hold
    the write lock these need)."""
    with transaction(session_factory) as session:
        channel = session.get(Channel, channel_id)
        if channel is None or not channel.active:
            raise InvalidInput("pick an active channel", field="channel_id")
        kind = _bulk_kind(channel)
        campaign = Campaign(name=name.strip() or "Bulk send", channel_id=channel_id, template_id=template_id,
                            body_template=body, status="sending", total=0, skipped=0,
                            created_by_id=user.id if user else None)
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
        record(session, action="campaign.start", subject_type="campaign", subject_id=campaign_id,
               actor_id=user.id if user else None, via=via, name=campaign.name, channel=channel.name)
    plan = BulkPlan(price_per_segment=_price(channel))
    render = renderer(body, user, settings)
    # The audience is read on its own read-only transaction while each chunk commits on another.
    with session_factory() as reader:
        reader.connection(execution_options=READ_ONLY)
        batch: list[_Row] = []
        for row in _prepare(recipients_source(reader), render, plan, kind):
            batch.append(row)
            if len(batch) >= CHUNK:
                _store_chunk(session_factory, batch, kind, channel_id, campaign_id, user, enqueue)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            _store_chunk(session_factory, batch, kind, channel_id, campaign_id, user, enqueue)
            if progress:
                progress(len(batch))
        reader.commit()
    with transaction(session_factory) as session:
        campaign = session.get(Campaign, campaign_id)
        campaign.total = plan.sendable + plan.opted_out
        campaign.skipped = len(plan.rejected)
    log.info("campaign %d (%s): %d messages stored, %d opted out, %d rejected", campaign_id, campaign.name,
             plan.sendable, plan.opted_out, len(plan.rejected))
    return campaign, plan


def _store_chunk(session_factory, rows_: list[_Row], kind: ChannelKind, channel_id: int, campaign_id: int,
                 user: User | None, enqueue: Callable[[list[int]], None]) -> None:
    now = utcnow()
    with transaction(session_factory) as session:
        conversations = open_conversations(session.connection(), channel_id, {
            row.identity.key: (row.identity.e164, row.recipient.contact.id) for row in rows_}, now)
        values = [rows.outbound(kind, channel_id=channel_id, conversation_id=conversations[row.identity.key].id,
                                contact=row.recipient.contact, origin="campaign", phone=row.recipient.phone,
                                phone_e164=row.identity.e164, body=row.text, now=now,
                                author_id=user.id if user else None, campaign_id=campaign_id)
                  for row in rows_]
        inserted = session.execute(insert(Message).returning(Message.id, Message.status), values)
        queued = [message_id for message_id, status in inserted if status == "queued"]
        after_commit(session, lambda: enqueue(queued))


def campaign_progress(session: Session, campaign_id: int) -> dict[str, int]:
    if session.get(Campaign, campaign_id) is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    return dict(session.execute(select(Message.status, func.count()).where(Message.campaign_id == campaign_id)
                                .group_by(Message.status)).all())
