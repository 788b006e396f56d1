"""Bulk sends: a template to many recipients, stored as one message row each, dispatched in batches.

Rows are written with Core inserts a chunk at a time (100k recipients in seconds, flat memory);
each chunk commits before its dispatch job is enqueued, so nothing accepted is ever lost.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, aliased, lazyload, sessionmaker

from contact_center import phones
from contact_center.audit.service import record
from contact_center.auth.models import User
from contact_center.campaigns.content import Content, NotSendable, Render, render_for
from contact_center.campaigns.models import Campaign
from contact_center.campaigns.windows import SendWindow, parse_window, waiting_reason
from contact_center.channels import whatsapp_templates
from contact_center.channels.kinds import ChannelKind, kind_of
from contact_center.channels.models import Channel
from contact_center.contacts import tags
from contact_center.contacts.fields import WITH_FIELDS
from contact_center.contacts.models import Contact
from contact_center.contacts.service import candidates_by_key, pick_contact, search_filter
from contact_center.db import READ_ONLY, transaction, utcnow
from contact_center.translations import Quantity, Words, as_words, dump, rewrite_stored, store
from contact_center.errors import Conflict, InvalidInput, NotFound
from contact_center.inbox.service import open_conversations
from contact_center.messaging.models import Message
from contact_center.messaging import rows, service
from contact_center.privacy import erased_numbers
from contact_center.privacy.erased_numbers import ErasedOptOuts
from contact_center.settings import Settings
from contact_center.templates.rendering import TemplateError

log = logging.getLogger(__name__)
# A recipient's contact is loaded with its field values (templates read them); its tags only if
# something asks, which rendering does not.
RECIPIENT_LOADING = (WITH_FIELDS, lazyload(Contact.tag_rows))
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
    kind: str = "invalid"  # a SKIP_REASONS key


# Why a recipient of the audience gets no message, as the campaign page counts them.
SKIP_REASONS = {"opted_out": "descadastrado (opt-out)", "no_number": "sem número válido para o canal",
                "invalid_number": "número inválido", "duplicate": "número repetido no público",
                "message": "mensagem inválida para este contato"}


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
    seen: set[str] = field(default_factory=set, repr=False)  # phone keys already in the audience
    erased: ErasedOptOuts = field(default_factory=ErasedOptOuts.none, repr=False)  # numbers of erased opt-outs

    def reject(self, where: str, reason: str, kind: str) -> None:
        self.rejected.append(Rejected(where, reason, kind))

    @property
    def skip_reasons(self) -> dict[str, int]:
        counts = {kind: 0 for kind in SKIP_REASONS}
        counts["opted_out"] = self.opted_out
        for rejected in self.rejected:
            counts[rejected.kind] += 1
        return {kind: count for kind, count in counts.items() if count}

    @property
    def estimated_cost(self) -> Decimal | None:
        return None if self.price_per_segment is None else self.price_per_segment * self.segments


# --- audiences -----------------------------------------------------------------------------------

def contacts_by_ids(session: Session, ids: list[int]) -> Iterator[Recipient]:
    unique_ids = list(dict.fromkeys(ids))
    found: set[int] = set()
    for start in range(0, len(unique_ids), CHUNK):
        for contact in session.scalars(select(Contact).options(*RECIPIENT_LOADING)
                                      .where(Contact.id.in_(unique_ids[start:start + CHUNK]))):
            found.add(contact.id)
            yield Recipient(contact.mobile or contact.phone or "", contact, f"contact {contact.id}")
    missing = [i for i in unique_ids if i not in found]
    if missing:
        if len(missing) > 10:
            raise NotFound("no contact with id {ids} and others", ids=", ".join(map(str, missing[:10])))
        raise NotFound("no contact with id {ids}", ids=", ".join(map(str, missing)))


def contacts_matching(session: Session, search: str | None, tag: str | None = None) -> Iterator[Recipient]:
    """Every contact (or those matching `search`, or those with `tag`), by id, read in chunks."""
    last_id = 0
    while True:
        query = select(Contact).options(*RECIPIENT_LOADING).where(Contact.id > last_id).order_by(Contact.id).limit(CHUNK)
        if search and search.strip():
            query = query.where(search_filter(search.strip()))
        if tag is not None:
            query = query.where(tags.having_all([tag]))
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
    identities: list[phones.PhoneIdentity | str | None] = []  # None: no number; str: why it is not one
    for _, phone, _ in rows:
        if not phone:
            identities.append(None)  # no number at all: `_prepare` says so
            continue
        try:
            identities.append(phones.identify(phone))
        except phones.PhoneNumberError as exc:
            identities.append(str(exc))
    known = [i for i in identities if isinstance(i, phones.PhoneIdentity)]
    candidates = candidates_by_key(session.connection(), list({i.key for i in known}))
    chosen = {}
    for identity in known:
        picked = pick_contact(identity, candidates.get(identity.key, []))
        if picked is not None:
            chosen[identity.key] = picked.id
    ids = list(set(chosen.values()))
    contacts = {c.id: c for start in range(0, len(ids), CHUNK)
                for c in session.scalars(select(Contact).options(*RECIPIENT_LOADING)
                                         .where(Contact.id.in_(ids[start:start + CHUNK])))}
    for (line, phone, name), identity in zip(rows, identities):
        if identity is None:
            yield Recipient("", Contact(name=name), f"line {line}")
            continue
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
    message: Content


def _prepare(recipients: Iterable[Recipient], render: Render, plan: BulkPlan, kind: ChannelKind) -> Iterator[_Row]:
    for recipient in recipients:
        plan.recipients += 1
        contact = recipient.contact
        where = recipient.where or recipient.phone
        if recipient.error:
            plan.reject(where, recipient.error, "invalid_number")
            continue
        if not recipient.phone:
            plan.reject(where, "has no phone or mobile", "no_number")
            continue
        try:
            identity = phones.identify(recipient.phone)
        except phones.PhoneNumberError as exc:
            plan.reject(where, str(exc), "invalid_number")
            continue
        if identity.key in plan.seen:
            plan.reject(where, f"{identity.e164} is already in this audience", "duplicate")
            continue
        plan.seen.add(identity.key)
        try:
            message = render(contact)
        except (TemplateError, NotSendable) as exc:
            plan.reject(where, str(exc), "message")
            continue
        text = message.text
        if not text or len(text) > kind.max_body_characters:
            plan.reject(where, "the rendered message is empty" if not text else
                        f"the rendered message has {len(text)} characters (limit {kind.max_body_characters})",
                        "message")
            continue
        if message.blocked_reason is None and not kind.opted_out(contact):
            erased = plan.erased.blocks(identity.key, kind, message.content)
            if erased is not None:  # an erased contact's opt-out, whoever has the number now
                message = replace(message, blocked_reason=erased.reason)
        measure = kind.measure(text)
        if kind.opted_out(contact) or message.blocked_reason:
            plan.opted_out += 1
        else:
            plan.sendable += 1
            plan.segments += measure.segments
        if len(plan.preview) < PREVIEW_COUNT:
            plan.preview.append({"to": identity.e164, "name": contact.name, "text": text, "segments": measure.segments})
        yield _Row(recipient, identity, message)


def plan_bulk(session: Session, recipients: Iterable[Recipient], *, channel: Channel, render: Render) -> BulkPlan:
    """Render everything without storing: the preview, counts and cost the operator confirms."""
    plan = BulkPlan(price_per_segment=_price(channel), erased=erased_numbers.look_up(session))
    for _ in _prepare(recipients, render, plan, kind_of(channel)):
        pass
    return plan


def _price(channel: Channel) -> Decimal | None:
    value = channel.settings.get("price_per_segment")
    return Decimal(str(value)) if value not in (None, "") else None




# --- the campaign's life: created, built by a job, run by its pump --------------------------------

PUMP_BATCH = 2000  # released at a time when the campaign has no throughput cap
CANCELLED_REASON = Words("not sent: the campaign was cancelled")
AUDIENCE_KINDS = ("contact_ids", "search", "csv", "tag")


def check_audience(audience: dict | None) -> dict:
    given = {key: value for key, value in (audience or {}).items() if value is not None}
    if len(given) != 1 or next(iter(given)) not in AUDIENCE_KINDS:
        raise InvalidInput("audience: give exactly one of contact_ids (a list of contact ids), search (a contact "
                           "filter; empty for every contact), csv (the file's text: phone[,name]) or tag (the "
                           "contacts with it)", field="audience")
    if "tag" in given:
        [given["tag"]] = tags.clean([given["tag"]], field="tag")
    return given


def audience_source(audience: dict) -> Callable[[Session], Iterable[Recipient]]:
    if "contact_ids" in audience:
        return lambda s: contacts_by_ids(s, audience["contact_ids"])
    if "search" in audience:
        return lambda s: contacts_matching(s, audience["search"])
    if "tag" in audience:
        return lambda s: contacts_matching(s, None, tag=audience["tag"])
    return lambda s: recipients_from_csv(s, audience["csv"])


def create_campaign(session: Session, *, name: str, channel_id: int, body: str | None, template_id: int | None,
                    audience: dict, user: User | None, settings: Settings, starts_at: datetime | None = None,
                    send_window: dict | None = None, per_minute: int | None = None, start: bool = False,
                    whatsapp_template_id: int | None = None, template_parameters: dict | None = None,
                    via: str = "api") -> Campaign:
    """A campaign stored as `building`: its recipients are stored by a job (build), enqueued once
    this is committed. With `start`, it runs as soon as it is built. Its message is checked once
    here (content.render_for): an SMS body, or a WhatsApp approved template and its parameters."""
    channel = session.get(Channel, channel_id)
    if channel is None or not channel.active:
        raise InvalidInput("pick an active channel", field="channel_id")
    audience = check_audience(audience)
    render_for(session, channel, body=body, whatsapp_template_id=whatsapp_template_id,
               parameters=template_parameters, user=user, settings=settings)
    if whatsapp_template_id is not None:
        body = whatsapp_templates.get_template(session, channel.id, whatsapp_template_id).name
    window = parse_window(send_window)
    if per_minute is not None and not 1 <= per_minute <= 1_000_000:
        raise InvalidInput("per_minute: the throughput cap is between 1 and 1,000,000 messages a minute",
                           field="per_minute")
    campaign = Campaign(name=(name or "").strip()[:200] or "Campanha", channel_id=channel.id, template_id=template_id,
                        body_template=body, whatsapp_template_id=whatsapp_template_id,
                        template_parameters=template_parameters, status="building", audience=audience,
                        starts_at=starts_at,
                        send_window=window.model_dump(mode="json"), per_minute=per_minute, start_when_built=start,
                        created_by_id=user.id if user else None)
    session.add(campaign)
    session.flush()
    record(session, action="campaign.create", subject_type="campaign", subject_id=campaign.id,
           actor_id=user.id if user else None, via=via, name=campaign.name, channel=channel.name,
           start=start, starts_at=starts_at.isoformat() if starts_at else None)
    return campaign


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("no campaign with id {campaign_id}", campaign_id=campaign_id)
    return campaign


def build(session_factory: sessionmaker[Session], settings: Settings, campaign_id: int,
          progress: Callable[[int], None] | None = None) -> bool:
    """Store one `scheduled` message per recipient, a chunk a transaction, counting as it goes.
    Run again after a crash it starts over: nothing of a building campaign has been released, so
    what it had stored is removed first. True when the campaign is to run now."""
    with transaction(session_factory) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != "building":
            return False
        session.execute(delete(Message).where(Message.campaign_id == campaign_id,
                                              Message.status.in_(("scheduled", "blocked"))))
        campaign.total = campaign.skipped = 0
        channel = session.get(Channel, campaign.channel_id)
        user = session.get(User, campaign.created_by_id) if campaign.created_by_id else None
        kind, audience = kind_of(channel), campaign.audience
        try:
            render = render_for(session, channel, body=None if campaign.whatsapp_template_id else
                                campaign.body_template, whatsapp_template_id=campaign.whatsapp_template_id,
                                parameters=campaign.template_parameters, user=user, settings=settings)
        except (InvalidInput, NotFound) as exc:  # the template changed since (paused at Meta, deleted)
            campaign.status, campaign.error = "failed", store(exc)
            log.warning("campaign %d cannot be built: %s", campaign_id, exc.message)
            return False
        erased = erased_numbers.look_up(session)
        session.expunge_all()
    plan = BulkPlan(price_per_segment=_price(channel), erased=erased)
    try:
        # The audience is read on its own read-only transaction while each chunk commits on another.
        with session_factory() as reader:
            reader.connection(execution_options=READ_ONLY)
            batch: list[_Row] = []
            for row in _prepare(audience_source(audience)(reader), render, plan, kind):
                batch.append(row)
                if len(batch) >= CHUNK:
                    if not _store_chunk(session_factory, batch, kind, campaign_id, plan):
                        return False  # cancelled while building
                    if progress:
                        progress(len(batch))
                    batch = []
            if batch:
                if not _store_chunk(session_factory, batch, kind, campaign_id, plan):
                    return False
                if progress:
                    progress(len(batch))
            reader.commit()
    except (InvalidInput, NotFound) as exc:
        with transaction(session_factory) as session:
            campaign = session.get(Campaign, campaign_id)
            campaign.status, campaign.error = "failed", store(exc)
        log.warning("campaign %d: its audience could not be read: %s", campaign_id, exc.message)
        return False
    with transaction(session_factory) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign.status != "building":
            return False
        campaign.total, campaign.skipped = plan.sendable + plan.opted_out, len(plan.rejected)
        campaign.skip_reasons = plan.skip_reasons
        campaign.status = "running" if campaign.start_when_built else "ready"
        if campaign.start_when_built:
            campaign.started_at = utcnow()
        runs = campaign.status == "running"
    log.info("campaign %d built: %d messages stored (%d opted out), %d skipped", campaign_id, plan.sendable +
             plan.opted_out, plan.opted_out, len(plan.rejected))
    return runs


def _store_chunk(session_factory, rows_: list[_Row], kind: ChannelKind, campaign_id: int, plan: BulkPlan) -> bool:
    """Store a chunk of the campaign's messages, unless it was cancelled meanwhile (False)."""
    now = utcnow()
    with transaction(session_factory) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign.status != "building":
            return False
        conversations = open_conversations(session.connection(), campaign.channel_id, {
            row.identity.key: (row.identity.e164, row.recipient.contact.id) for row in rows_}, now)
        session.execute(insert(Message), [
            rows.outbound(kind, channel_id=campaign.channel_id, conversation_id=conversations[row.identity.key].id,
                          contact=row.recipient.contact, origin="campaign", phone=row.recipient.phone,
                          phone_e164=row.identity.e164, body=row.message.text, now=now,
                          author_id=campaign.created_by_id, campaign_id=campaign_id, scheduled=True,
                          content_type=row.message.content_type, content=row.message.content,
                          blocked_reason=row.message.blocked_reason)
            for row in rows_])
        campaign.total += len(rows_)
        campaign.skipped = len(plan.rejected)
    return True


def _act(session: Session, campaign_id: int, action: str, allowed: tuple[str, ...], user: User | None,
         via: str) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    if campaign.status not in allowed:
        # Says what the campaign is, and which campaigns the action is for: what to do next follows.
        raise Conflict("a campanha '{name}' está {status}: só uma campanha {allowed} pode ser {action}",
                       name=campaign.name, status=STATUS_PT[campaign.status],
                       allowed=ALLOWED_PT[allowed], action=ACTION_PT[action])
    record(session, action=f"campaign.{action}", subject_type="campaign", subject_id=campaign.id,
           actor_id=user.id if user else None, via=via, name=campaign.name, was=campaign.status)
    return campaign


STATUS_PT = {"building": Words("em preparação"), "ready": Words("pronta"), "running": Words("em envio"),
             "paused": Words("pausada"), "completed": Words("concluída"), "cancelled": Words("cancelada"),
             "failed": Words("com falha")}
# Which campaigns each action is for, as the refusal says it.
ALLOWED_PT = {("ready", "building"): Words("pronta ou em preparação"), ("running",): Words("em envio"),
              ("paused",): Words("pausada"),
              ("building", "ready", "running", "paused"): Words("em preparação, pronta, em envio ou pausada")}
ACTION_PT = {"start": Words("iniciada"), "pause": Words("pausada"), "resume": Words("retomada"),
             "cancel": Words("cancelada")}


def start(session: Session, campaign_id: int, user: User | None, via: str = "api") -> Campaign:
    """ready → running (building: it will run once built). The caller commits, then pumps."""
    campaign = _act(session, campaign_id, "start", ("ready", "building"), user, via)
    if campaign.status == "building":
        campaign.start_when_built = True
    else:
        campaign.status, campaign.started_at = "running", utcnow()
    return campaign


def pause(session: Session, campaign_id: int, user: User | None, via: str = "api") -> Campaign:
    """running → paused: nothing more is released, and what was released but not claimed by a
    worker yet is taken back. Messages already with the provider go on."""
    campaign = _act(session, campaign_id, "pause", ("running",), user, via)
    campaign.status, campaign.waiting_reason = "paused", None
    held = service.hold_released(session, campaign_id)
    log.info("campaign %d paused; %d released message(s) taken back", campaign_id, held)
    return campaign


def resume(session: Session, campaign_id: int, user: User | None, via: str = "api") -> Campaign:
    campaign = _act(session, campaign_id, "resume", ("paused",), user, via)
    campaign.status, campaign.error = "running", None  # whoever resumes has seen the alert
    return campaign


def pause_for_provider(session: Session, campaign_ids: Iterable[int], reason: Words | str) -> list[Campaign]:
    """The provider holds a campaign's content against the number (WhatsApp's spam rate limit):
    each running campaign of these is paused for everyone with the reason as its alert, until a
    person reviews it and resumes it. Returns those paused now."""
    paused = list(session.scalars(select(Campaign).where(Campaign.id.in_(set(campaign_ids)),
                                                         Campaign.status == "running")))
    reason = as_words(reason)
    for campaign in paused:
        campaign.status, campaign.waiting_reason = "paused", None
        campaign.error = store(Words("paused automatically by the provider: {reason}", reason=reason))
        held = service.hold_released(session, campaign.id)
        record(session, action="campaign.pause", subject_type="campaign", subject_id=campaign.id, actor_id=None,
               via="system", name=campaign.name, was="running", reason=reason)
        log.error("campaign %d (%s) paused by the provider's refusal: %s; %d released message(s) taken back",
                  campaign.id, campaign.name, reason, held)
    return paused


def cancel(session: Session, campaign_id: int, user: User | None, via: str = "api") -> Campaign:
    """Whatever has not been handed to the provider is cancelled; `campaign.cancelled` says how many."""
    campaign = _act(session, campaign_id, "cancel", ("building", "ready", "running", "paused"), user, via)
    campaign.cancelled = service.cancel_unsent(session, campaign_id, CANCELLED_REASON)
    campaign.status, campaign.finished_at, campaign.waiting_reason = "cancelled", utcnow(), None
    log.info("campaign %d cancelled: %d message(s) not sent", campaign_id, campaign.cancelled)
    return campaign


@dataclass
class PumpResult:
    released: list[int] = field(default_factory=list)
    again_in: float | None = None  # seconds until the pump should look again; None: when asked
    completed: bool = False  # by this pump: its final states are to be read from the provider's report


def pump(session: Session, campaign_id: int, now: datetime | None = None) -> PumpResult:
    """Release the running campaign's next messages to the dispatch queue, inside its start time,
    send window and throughput; complete it when nothing of it is pending. The caller commits,
    then enqueues the dispatch of `released`."""
    now = now or utcnow()
    result = PumpResult()
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != "running":
        return result
    counts = _pending_counts(session, campaign_id)
    scheduled = _any_scheduled(session, campaign_id)
    if not scheduled and not any(counts.values()):
        return _complete(session, campaign, now, result)  # whatever the hour: nothing is left to send
    if campaign.starts_at is not None and now < campaign.starts_at:
        local = campaign.starts_at.astimezone(ZoneInfo("America/Sao_Paulo"))
        _waiting(campaign, Words("agendada: começa {date} às {time}", date=f"{local:%d/%m}", time=f"{local:%H:%M}"))
        result.again_in = min(60.0, (campaign.starts_at - now).total_seconds())
        return result
    window = SendWindow.model_validate(campaign.send_window or {})
    outside = waiting_reason(window, now)
    if outside:
        _waiting(campaign, outside)
        return result  # the periodic pump looks again each minute
    budget = PUMP_BATCH - counts.get("queued", 0) - counts.get("sending", 0)
    if campaign.per_minute is not None and scheduled:  # nothing left to release: no cap to wait for
        released_last_minute = session.scalar(select(func.count()).where(
            Message.campaign_id == campaign_id, Message.queued_at > now - timedelta(minutes=1)))
        budget = min(budget, campaign.per_minute - released_last_minute)
        if budget <= 0:
            _waiting(campaign, Words("limite de {count} mensagens por minuto", count=Quantity(campaign.per_minute)))
            result.again_in = 5.0
            return result
    if budget > 0 and scheduled:
        result.released = service.release_scheduled(session, campaign_id, budget)
    _waiting(campaign, None)
    return result


def _complete(session: Session, campaign: Campaign, now: datetime, result: PumpResult) -> PumpResult:
    campaign.status, campaign.finished_at, campaign.waiting_reason = "completed", now, None
    result.completed = True
    record(session, action="campaign.complete", subject_type="campaign", subject_id=campaign.id,
           actor_id=None, via="system", campaign_id=campaign.id, name=campaign.name)
    log.info("campaign %d (%s) completed", campaign.id, campaign.name)
    return result


def _waiting(campaign: Campaign, reason: Words | None) -> None:
    """Why the running campaign sends nothing now, kept as words each reader sees in their language."""
    stored = None if reason is None else dump(reason)
    if campaign.waiting_reason != stored:
        campaign.waiting_reason = stored


def _pending_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """The campaign's messages queued, being sent and unknown, by status (few: a pump's share)."""
    return dict(session.execute(select(Message.status, func.count()).where(
        Message.campaign_id == campaign_id, Message.status.in_(("queued", "sending", "unknown")))
        .group_by(Message.status)).all())


def _any_scheduled(session: Session, campaign_id: int) -> bool:
    """Whether any message is still to be released: asked, not counted, since counting read the
    whole campaign's index at every pump (each dispatch of 1,000 pumps once), under the write lock."""
    return session.scalar(select(Message.id).where(Message.campaign_id == campaign_id, Message.status == "scheduled")
                          .limit(1)) is not None


def running_campaigns(session: Session) -> list[int]:
    return list(session.scalars(select(Campaign.id).where(Campaign.status == "running").order_by(Campaign.id)))


def stuck_building(session: Session, older_than: timedelta = timedelta(minutes=5)) -> list[int]:
    """Campaigns whose build stopped (a crash): built again by the periodic pump."""
    return list(session.scalars(select(Campaign.id).where(Campaign.status == "building",
                                                          Campaign.updated_at < utcnow() - older_than)))


# --- what the campaign page shows -------------------------------------------------------------------

PROGRESS_STATES = ("scheduled", "queued", "sent", "delivered", "read", "failed", "blocked", "cancelled")
# The messages' own statuses each progress state counts (the others count as themselves).
STATE_GROUPS = {"queued": ("queued", "sending", "unknown"), "failed": ("failed", "rejected", "expired"),
                "read": ("read", "played")}
BUCKET_OF = {status: state for state, statuses in STATE_GROUPS.items() for status in statuses}


def by_status(session: Session, campaign_id: int) -> dict[str, int]:
    get_campaign(session, campaign_id)
    return summaries(session, [campaign_id])[campaign_id][0]


def progress(session: Session, campaign_id: int) -> dict[str, int]:
    """Counts of the campaign's messages by what an operator follows: waiting (scheduled), queued
    (with a worker), sent, delivered, read, failed, blocked, cancelled, and replied."""
    get_campaign(session, campaign_id)
    return summaries(session, [campaign_id])[campaign_id][1]


def summaries(session: Session, campaign_ids: list[int]) -> dict[int, tuple[dict[str, int], dict[str, int]]]:
    """(the messages' own statuses, progress) of each campaign, in two queries however many: a list
    of campaigns must not ask three questions per row."""
    statuses: dict[int, dict[str, int]] = {campaign_id: {} for campaign_id in campaign_ids}
    for campaign_id, status, count in session.execute(
            select(Message.campaign_id, Message.status, func.count()).where(Message.campaign_id.in_(campaign_ids))
            .group_by(Message.campaign_id, Message.status)):
        statuses[campaign_id][status] = count
    answer = aliased(Message)
    replied = dict(session.execute(
        select(Message.campaign_id, func.count(func.distinct(answer.in_reply_to_id))).select_from(answer)
        .join(Message, Message.id == answer.in_reply_to_id)
        .where(Message.campaign_id.in_(campaign_ids), answer.direction == "in").group_by(Message.campaign_id)).all())
    found = {}
    for campaign_id, own in statuses.items():
        counts = {state: 0 for state in PROGRESS_STATES}
        for status, count in own.items():
            bucket = BUCKET_OF.get(status, status)
            counts[bucket] = counts.get(bucket, 0) + count
        counts["replied"] = replied.get(campaign_id, 0)
        found[campaign_id] = (own, counts)
    return found


def recipients(session: Session, campaign_id: int, *, status: str | None = None, limit: int = 100,
               after_id: int | None = None) -> list[Message]:
    """The campaign's messages in id order, optionally only those of one progress state."""
    get_campaign(session, campaign_id)
    query = select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id).limit(limit)
    if status is not None:
        query = query.where(Message.status.in_(STATE_GROUPS.get(status, (status,))))
    if after_id is not None:
        query = query.where(Message.id > after_id)
    return list(session.scalars(query))


def record_export(session: Session, campaign: Campaign, user: User | None, via: str | None = None) -> None:
    record(session, action="campaign.export", subject_type="campaign", subject_id=campaign.id,
           actor_id=user.id if user else None, via=via, name=campaign.name)


def scrub_campaigns(session: Session, campaign_ids: list[int], scrub) -> None:
    """Pass what a campaign holds as written (its audience: a CSV's phones and names, a search; its
    error) through `scrub`, for an LGPD erasure."""
    for campaign in session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids))):
        audience = scrub(campaign.audience)
        if audience != campaign.audience:
            campaign.audience = audience
        if campaign.error:
            campaign.error = rewrite_stored(campaign.error, scrub)
    session.flush()
