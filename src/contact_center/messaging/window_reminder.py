"""The window-closing reminder: on a WhatsApp channel that has it on, a customer whose last message
is still unanswered when the 24-hour window is about to close gets one message (a text or an
approved template), sent by the system, so the conversation is not lost to a closed window.

Once per window: a reminder claims its window with a conditional UPDATE
(`reminded_window_at = window_closes_at` where it is not that already) before its message is
queued, in the same transaction, so two runs or two workers never remind the same window twice;
a new customer message opens a new window, which may be reminded again. Each channel's reminders
are committed before their dispatch is enqueued (the caller enqueues what this returns).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from contact_center.channels.models import Channel, WhatsAppTemplate
from contact_center.contacts.models import Contact
from contact_center.db import transaction, utcnow
from contact_center.errors import DomainError, InvalidInput
from contact_center.inbox.models import Conversation
from contact_center.messaging import approved_templates, service
from contact_center.messaging.models import Message
from contact_center.providers.whatsapp_cloud.templates import TemplateDefinition

log = logging.getLogger(__name__)

ORIGIN = "reminder"
TEMPLATE_FIELD = "settings.window_reminder_template"
# Customer messages that ask nothing: a reaction to our answer, a number change WhatsApp reports.
NOT_QUESTIONS = ("reaction", "system")
NAMELESS = "cliente"  # the template's parameter when the contact has no usable name


@dataclass
class ReminderRun:
    """What one run did: the reminder messages to dispatch, how many went out per channel."""

    message_ids: list[int] = field(default_factory=list)
    by_channel: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def is_on(channel: Channel) -> bool:
    return channel.kind == "whatsapp" and bool((channel.settings or {}).get("window_reminder"))


# --- the template a reminder may use ---------------------------------------------------------------

def fillable_problem(definition: TemplateDefinition) -> str | None:
    """Why this template cannot be a reminder; None when it can. A reminder knows nothing but the
    contact, so the template takes no parameters or one body parameter (the contact's first name)."""
    if not definition.sendable:
        return f"it is {definition.status}, not APPROVED"
    if definition.unsupported:
        return f"it uses {', '.join(definition.unsupported)}"
    if definition.header_media_type or definition.header_parameters:
        return "its header takes a parameter or media"
    if any(button.parameter_required for button in definition.buttons):
        return "a button takes a parameter"
    if len(definition.body_parameters) > 1:
        return (f"its body takes {len(definition.body_parameters)} parameters; a reminder can fill one "
                "(the contact's first name)")
    return None


def reminder_template(session: Session, channel_id: int, settings: dict) -> WhatsAppTemplate:
    """The channel's synced template its reminder settings name, if a reminder can send it;
    InvalidInput naming window_reminder_template otherwise."""
    from contact_center.channels import whatsapp_templates

    name, language = settings.get("window_reminder_template"), settings.get("window_reminder_language")
    template = session.scalar(select(WhatsAppTemplate).where(WhatsAppTemplate.channel_id == channel_id,
                                                             WhatsAppTemplate.name == name,
                                                             WhatsAppTemplate.language == language))
    if template is None:
        synced = session.scalars(select(WhatsAppTemplate.name).where(WhatsAppTemplate.channel_id == channel_id)
                                 .order_by(WhatsAppTemplate.name).distinct()).all()
        hint = (f"synced ones: {', '.join(synced)}" if synced else
                "none is synced yet: sync them (contact-center channels templates sync NAME), then choose one")
        raise InvalidInput("{TEMPLATE_FIELD}: the channel has no template '{name}' in '{language}'; {hint}",
                           TEMPLATE_FIELD=TEMPLATE_FIELD, name=name, language=language, hint=hint,
                           field=TEMPLATE_FIELD)
    problem = fillable_problem(whatsapp_templates.definition(template))
    if problem:
        raise InvalidInput("{TEMPLATE_FIELD}: the template '{name}' cannot be a reminder: {problem}",
                           TEMPLATE_FIELD=TEMPLATE_FIELD, name=name, problem=problem,
                           field=TEMPLATE_FIELD)
    return template


def check_settings(session: Session, channel_id: int | None, settings: dict) -> None:
    """At save time: a reminder switched on with a template must name one the channel can send.
    A new channel has no synced templates yet, so it can only start with a text reminder."""
    if not settings.get("window_reminder") or not settings.get("window_reminder_template"):
        return
    if channel_id is None:
        raise InvalidInput("{TEMPLATE_FIELD}: a new channel has no synced templates yet: create it, sync its "
                           "templates, then choose the reminder template",
                           TEMPLATE_FIELD=TEMPLATE_FIELD, field=TEMPLATE_FIELD)
    reminder_template(session, channel_id, settings)


def first_name(contact: Contact | None) -> str:
    """What fills a reminder template's one parameter. A contact named by its phone (adopted from
    WhatsApp without a profile name) has no name worth greeting."""
    name = (contact.name if contact is not None else "") or ""
    word = name.split()[0] if name.split() else ""
    return word if re.search(r"[^\W\d_]", word) else NAMELESS


# --- the job ---------------------------------------------------------------------------------------

def due(session: Session, channel: Channel, now: datetime) -> list[Conversation]:
    """The channel's conversations to remind now: the window closes within the lead time and is
    still open, the conversation is not done, the customer's last message has no outbound message
    after it (from anyone), the contact has not opted out of WhatsApp, and this window was not
    reminded yet."""
    lead = timedelta(minutes=int(channel.settings.get("window_reminder_minutes", 60)))
    inbound, outbound = aliased(Message), aliased(Message)
    last_question = (select(func.max(inbound.created_at))
                     .where(inbound.conversation_id == Conversation.id, inbound.direction == "in",
                            inbound.content_type.not_in(NOT_QUESTIONS))
                     .scalar_subquery())
    answered = exists().where(outbound.conversation_id == Conversation.id, outbound.direction == "out",
                              outbound.created_at >= last_question)
    return list(session.scalars(
        select(Conversation)
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.channel_id == channel.id,
               Conversation.window_closes_at > now, Conversation.window_closes_at <= now + lead,
               Conversation.status != "done",
               Conversation.reminded_window_at.is_distinct_from(Conversation.window_closes_at),
               or_(Contact.id.is_(None), Contact.opt_out_whatsapp.is_(False)),
               last_question.is_not(None), ~answered)
        .order_by(Conversation.window_closes_at, Conversation.id)))


def claim(session: Session, conversation: Conversation) -> bool:
    """This window's reminder is ours to send: whoever sets reminded_window_at first. A window
    that moved since it was read (the customer wrote again) is not claimed."""
    closes = conversation.window_closes_at
    claimed = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id, Conversation.window_closes_at == closes,
               Conversation.reminded_window_at.is_distinct_from(closes))
        .values(reminded_window_at=closes)
        .execution_options(synchronize_session=False)).rowcount
    return claimed == 1


def _queue(session: Session, channel: Channel, conversation: Conversation, template: WhatsAppTemplate | None):
    contact = session.get(Contact, conversation.contact_id) if conversation.contact_id else None
    common = dict(channel=channel, phone=conversation.recipient, contact=contact, origin=ORIGIN, via="system")
    if template is None:
        return service.queue_outbound(session, body=channel.settings["window_reminder_text"], **common)
    from contact_center.channels import whatsapp_templates

    definition = whatsapp_templates.definition(template)
    parameters = None
    if definition.body_parameters:
        [parameter] = definition.body_parameters
        name = first_name(contact)
        parameters = {"body": {parameter: name} if definition.is_named else [name]}
    return approved_templates.queue_template(session, template_id=template.id, parameters=parameters, **common)


def remind_channel(session: Session, channel: Channel, now: datetime | None = None) -> list[Message]:
    """Claim and queue this channel's due reminders (flushes; the caller commits, then dispatches)."""
    now = now or utcnow()
    template = reminder_template(session, channel.id, channel.settings) \
        if channel.settings.get("window_reminder_template") else None
    queued = []
    for conversation in due(session, channel, now):
        if not claim(session, conversation):
            continue  # another run took it
        try:
            with session.begin_nested():  # one customer's problem leaves the claim, not the others
                message = _queue(session, channel, conversation, template)
        except DomainError as exc:
            log.warning("conversation %d: window reminder not sent: %s", conversation.id, exc.message)
            continue
        queued.append(message)
    return queued


def remind_closing_windows(session_factory, now: datetime | None = None) -> ReminderRun:
    """The periodic job's body: every active, unpaused WhatsApp channel with the reminder on, each
    in its own transaction (committed here; one channel's problem does not stop the others). The
    caller enqueues the dispatch of `message_ids`, which are committed by then."""
    run = ReminderRun()
    with transaction(session_factory) as session:
        channel_ids = [channel.id for channel in session.scalars(
            select(Channel).where(Channel.kind == "whatsapp", Channel.active.is_(True), Channel.paused_at.is_(None))
            .order_by(Channel.id)) if is_on(channel)]
    for channel_id in channel_ids:
        try:
            with transaction(session_factory) as session:
                channel = session.get(Channel, channel_id)
                if not (is_on(channel) and channel.active and channel.paused_at is None):
                    continue  # changed since it was listed
                ids = [m.id for m in remind_channel(session, channel, now)
                       if m.status == "queued"]  # a blocked one (marketing stopped) has nothing to send
                run.by_channel[channel.name] = len(ids)
        except DomainError as exc:
            log.warning("channel %d: window reminders not sent: %s", channel_id, exc.message)
            run.problems.append(exc.message)
            continue
        run.message_ids += ids
    return run
