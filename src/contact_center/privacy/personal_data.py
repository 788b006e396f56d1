"""Every table that holds a customer's personal data, in one place.

`TABLES` says, for each, how a data subject's rows are found (what the LGPD export gathers) and
how they are erased (each through the module that writes that table). A new table with personal
data gets an entry here; the erasure test searches every table's text for what it left behind.

What an erasure keeps on purpose, and why (what is needed to honour the person's own requests;
LGPD art. 16, I allows keeping data a legal obligation requires, and no more):
* The contact's row, blanked, with its opt-out flags (SMS, WhatsApp, marketing) and erased_at.
* For a contact that came from Odoo, its res.partner id: a number that names nobody here, without
  which the next partner sync would bring the person back from Odoo (odoo/sync.py skips it).
* No phone number, not even hashed: a plain hash of a phone is the phone (every Brazilian mobile
  can be hashed and compared in minutes). For a contact who had opted out of anything, a keyed hash
  (HMAC with the product's secret key) of each of its numbers, pointing at the tombstone: a number
  that reaches us again later (a CSV import, an Odoo sync, a WhatsApp message the person sends) is
  a new contact without the old flags, and every send checks the number against these hashes
  (erased_numbers.py). Without the key a hash names nobody. An SMS opt-out also stays where it was
  pushed when the person asked, the providers' blacklists (contacts/blacklist.py; Kolmeya refuses
  the number from any system on the account): the erasure never asks them to remove it, and pushes
  it again itself, in case that push had not happened yet; the numbers wait in the job queue's
  storage until it has run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Select, String, cast, or_, select
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.audit.models import AuditEntry
from contact_center.audit.service import REDACTED, scrub, written_forms
from contact_center.campaigns.models import Campaign
from contact_center.contacts.documents import format_cpf
from contact_center.contacts.identifiers import user_key
from contact_center.contacts.models import Contact, ContactFieldValue, ContactIdentifier, ContactTag
from contact_center.db import chunks
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.messaging.models import Message, MessageAttempt
from contact_center.privacy.models import ErasedNumber
from contact_center.settings import Settings
from contact_center.translations import Words
from contact_center.webhooks.models import WebhookEvent

MIN_NEEDLE = 4  # shorter texts ("Oi", "ok") are not searched for: they would match everyone


@dataclass
class DataSubject:
    """One customer as the tables know them: their contact, the conversations of their phones and
    identifiers on every channel, those conversations' messages, and their personal data as text."""

    contact: Contact
    identifiers: list[tuple[str, str]]
    conversation_ids: list[int]
    message_ids: list[int]
    match_keys: set[str] = field(default_factory=set)  # of their phones and identifiers, as conversations hold them
    identity: set[str] = field(default_factory=set)  # name, phones in their forms, email, CPF, identifiers
    texts: set[str] = field(default_factory=set)  # what they wrote or were sent, the notes about them

    @property
    def needles(self) -> set[str]:
        """What must not remain anywhere after an erasure."""
        return self.identity | self.texts

    def scrub(self, value):
        """`value` (text, or JSON-like data) with each needle replaced by "[apagado]"."""
        return scrub(value, self.needles)


def phone_forms(e164: str | None) -> set[str]:
    """The ways a stored or logged phone may be written: E.164, digits, national, WhatsApp's 12-digit form."""
    if not e164:
        return set()
    digits = e164.lstrip("+")
    forms = {e164, digits}
    if e164.startswith("+55"):
        national = digits[2:]
        forms |= {national, f"({national[:2]}) {national[2:-4]}-{national[-4:]}",
                  f"+55 {national[:2]} {national[2:-4]}-{national[-4:]}"}
        if len(national) == 11 and national[2] == "9":  # a mobile: also without the ninth digit
            forms.add("55" + national[:2] + national[3:])
    return forms


def find_subject(session: Session, contact: Contact) -> DataSubject:
    identifiers = [(kind, value) for kind, value in session.execute(
        select(ContactIdentifier.kind, ContactIdentifier.value).where(ContactIdentifier.contact_id == contact.id))]
    keys = {k for k in (contact.phone_key, contact.mobile_key) if k}
    keys |= {user_key(value) for kind, value in identifiers if kind == "wa_user_id"}
    for kind, value in identifiers:
        if kind == "wa_id":
            try:
                keys.add(phones.match_key(value))
            except phones.PhoneNumberError:
                pass
    conversation_filter = Conversation.contact_id == contact.id
    if keys:  # their phones' conversations nobody linked yet; one linked to another contact is theirs
        conversation_filter = or_(conversation_filter,
                                  Conversation.phone_key.in_(keys) & Conversation.contact_id.is_(None))
    conversation_ids = list(session.scalars(select(Conversation.id).where(conversation_filter).order_by(Conversation.id)))
    message_filter = Message.contact_id == contact.id
    if conversation_ids:
        message_filter = or_(message_filter, Message.conversation_id.in_(conversation_ids))
    message_ids = list(session.scalars(select(Message.id).where(message_filter).order_by(Message.id)))
    subject = DataSubject(contact, identifiers, conversation_ids, message_ids, keys)
    identity = {contact.name, contact.phone, contact.mobile, contact.email, contact.document,
               format_cpf(contact.document) if contact.document else None,
               *phone_forms(contact.phone_e164), *phone_forms(contact.mobile_e164),
               *(value for _, value in identifiers)}
    for kind, value in identifiers:
        if kind == "wa_id":
            identity |= phone_forms("+" + value.lstrip("+"))
    texts = {contact.notes}
    for chunk in chunks(message_ids):
        for phone, phone_e164, body in session.execute(select(Message.phone, Message.phone_e164, Message.body)
                                                       .where(Message.id.in_(chunk))):
            identity |= {phone, *phone_forms(phone_e164)}
            texts.add(body)
    subject.identity, subject.texts = _worth_searching(identity), _worth_searching(texts) - _worth_searching(identity)
    return subject


def _worth_searching(texts: set[str | None]) -> set[str]:
    return {t.strip() for t in texts if t and len(t.strip()) >= MIN_NEEDLE and t.strip() != REDACTED}


@dataclass(frozen=True)
class PersonalTable:
    name: str
    rows: Callable[[DataSubject], Select]  # the subject's rows, for the export
    erase: Callable[[Session, DataSubject, "ErasureContext"], None] | None  # None: nothing personal in it


@dataclass
class ErasureContext:
    settings: Settings
    counts: dict = field(default_factory=dict)


def _in(column, ids: list[int]):
    return column.in_(ids or [-1])  # no ids: a condition no row meets


def _webhook_rows(subject: DataSubject) -> Select:
    """Callbacks about their messages, and any that names one of their phones or identifiers (a
    reply that found no message, a rejected body)."""
    ids = sorted({needle for needle in subject.identity if needle.lstrip("+").isdigit() or needle.startswith("BR.")})
    conditions = [_in(WebhookEvent.message_id, subject.message_ids)]
    conditions += [WebhookEvent.payload.like(f"%{form}%") for form in ids]
    return select(WebhookEvent).where(or_(*conditions)).order_by(WebhookEvent.id)


def _audit_rows(subject: DataSubject) -> Select:
    """Entries about them or their messages, and any whose text names them (a search, a CSV export)."""
    detail = cast(AuditEntry.detail, String)
    named = [(AuditEntry.subject_type == "contact") & (AuditEntry.subject_id == subject.contact.id),
             (AuditEntry.subject_type == "message") & _in(AuditEntry.subject_id, subject.message_ids)]
    named += [column.like(f"%{form}%") for needle in subject.identity for form in written_forms(needle)
              for column in (AuditEntry.summary, detail)]
    return select(AuditEntry).where(or_(*named)).order_by(AuditEntry.id)


def _campaign_rows(subject: DataSubject) -> Select:
    member_of = select(Message.campaign_id).where(_in(Message.id, subject.message_ids), Message.campaign_id.is_not(None))
    return select(Campaign.id, Campaign.name, Campaign.status, Campaign.created_at, Campaign.started_at,
                  Campaign.finished_at).where(Campaign.id.in_(member_of)).order_by(Campaign.id)


def _erase_contact(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.contacts import blacklist, identifiers, service

    if subject.contact.opt_out_sms:
        blacklist.push_erased_after_commit(session, (subject.contact.phone_e164, subject.contact.mobile_e164))
    context.counts["identifiers"] = identifiers.forget(session, subject.contact.id)
    service.erase_personal_data(session, subject.contact)


def _keep_erased_numbers(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.privacy import erased_numbers

    context.counts["opted_out_numbers_kept"] = erased_numbers.record(session, subject.contact, subject.match_keys)


def _erase_tags(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.contacts import tags

    tags.replace(session, subject.contact.id, [])  # what the business wrote about them ("inadimplente")


def _erase_field_values(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.contacts import fields

    context.counts["field_values"] = fields.erase_values(session, subject.contact.id)


def _erase_conversations(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.inbox.service import forget_phones

    forget_phones(session, subject.conversation_ids)
    context.counts["conversations"] = len(subject.conversation_ids)


def _erase_messages(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.messaging.redaction import cancel_waiting, erase_content, scrub_status_reasons

    context.counts["cancelled"] = cancel_waiting(session, subject.message_ids,
                                                 Words("not sent: the contact's data was erased (LGPD)"))
    scrub_status_reasons(session, subject.message_ids, subject.scrub)
    context.counts["media_files"] = erase_content(session, subject.message_ids, context.settings, phones=True)
    context.counts["messages"] = len(subject.message_ids)


def _erase_attempts(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.messaging.attempts import scrub_reasons

    scrub_reasons(session, subject.message_ids, subject.scrub)


def _erase_webhook_events(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.webhooks.events import erase_payloads

    ids = list(session.scalars(_webhook_rows(subject).with_only_columns(WebhookEvent.id)))
    erase_payloads(session, ids, subject.scrub)
    context.counts["webhook_events"] = len(ids)


def _erase_campaigns(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.campaigns.service import scrub_campaigns

    # A CSV audience or a search may name them in campaigns they never became a message of (skipped).
    text = cast(Campaign.audience, String)
    matches = [text.like(f"%{form}%") for needle in subject.identity for form in written_forms(needle)]
    named = set(session.scalars(select(Campaign.id).where(or_(*matches)))) if matches else set()
    member = {row.id for row in session.execute(_campaign_rows(subject))}
    scrub_campaigns(session, sorted(named | member), subject.scrub)


def _erase_audit(session: Session, subject: DataSubject, context: ErasureContext) -> None:
    from contact_center.audit.service import redact

    named = list(session.scalars(_audit_rows(subject).with_only_columns(AuditEntry.id)))
    context.counts["audit_entries_redacted"] = redact(session, subject.needles, entry_ids=named, search=False)


# In the order the erasure runs: the audit log last, so that it also finds what the others wrote.
TABLES: tuple[PersonalTable, ...] = (
    PersonalTable("contacts", lambda s: select(Contact).where(Contact.id == s.contact.id), _erase_contact),
    PersonalTable("contact_identifiers",
                  lambda s: select(ContactIdentifier).where(ContactIdentifier.contact_id == s.contact.id)
                  .order_by(ContactIdentifier.id), None),  # removed with the contact's row
    PersonalTable("erased_numbers", lambda s: select(ErasedNumber).where(ErasedNumber.contact_id == s.contact.id)
                  .order_by(ErasedNumber.number_hash), _keep_erased_numbers),  # keyed hashes, written here
    PersonalTable("contact_tags", lambda s: select(ContactTag).where(ContactTag.contact_id == s.contact.id)
                  .order_by(ContactTag.id), _erase_tags),
    PersonalTable("contact_field_values",
                  lambda s: select(ContactFieldValue).where(ContactFieldValue.contact_id == s.contact.id)
                  .order_by(ContactFieldValue.field_id), _erase_field_values),
    PersonalTable("conversations", lambda s: select(Conversation).where(_in(Conversation.id, s.conversation_ids))
                  .order_by(Conversation.id), _erase_conversations),
    PersonalTable("conversation_events",
                  lambda s: select(ConversationEvent).where(_in(ConversationEvent.conversation_id, s.conversation_ids))
                  .order_by(ConversationEvent.id), None),  # who took or closed it, when: no customer data
    PersonalTable("messages", lambda s: select(Message).where(_in(Message.id, s.message_ids)).order_by(Message.id),
                  _erase_messages),
    PersonalTable("message_attempts",
                  lambda s: select(MessageAttempt).where(_in(MessageAttempt.message_id, s.message_ids))
                  .order_by(MessageAttempt.id), _erase_attempts),
    PersonalTable("webhook_events", _webhook_rows, _erase_webhook_events),
    PersonalTable("campaigns", _campaign_rows, _erase_campaigns),
    PersonalTable("audit_log", _audit_rows, _erase_audit),
)
