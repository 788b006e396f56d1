"""Who handles a conversation, and what each operator may do with it.

    new ──take / assign──▶ assigned ──close──▶ done
     ▲  ◀──────release───────┘  ▲  │transfer      │
     │                          └──┘              │
     └────────── a customer writes (inbox.service.open_conversation) ◀──┘
                 done ──reopen──▶ assigned (to whoever reopens)

Roles: agents see unassigned conversations and their own; supervisors and admins see all and can
assign or reassign any of them. Only the assignee (or a supervisor) writes in an assigned
conversation; writing in a new one takes it, writing in a done one reopens it.

Every change is one conditional UPDATE ... WHERE status and assignee are still what we read: of
two operators taking the same conversation at once one wins, the other gets a StaleAction naming
who has it now. Each change adds a ConversationEvent to the timeline and announces
`conversation.updated` after commit.

(inbox.service keeps the hot path that messages take; this module is the operators' side.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.auth.models import User
from contact_center.channels.kinds import kind_of
from contact_center.channels.models import Channel
from contact_center.contacts import service as contacts
from contact_center.contacts.duplicates import refuse_phone_duplicates
from contact_center.contacts.models import Contact
from contact_center.db import utcnow
from contact_center.translations import Words
from contact_center.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from contact_center.events import announce
from contact_center.inbox.models import Conversation, ConversationEvent, QuickReply
from contact_center.inbox.service import conversation_for
from contact_center.inbox.visibility import can_see, is_staff
from contact_center.messaging import approved_templates, fallback
from contact_center.messaging import service as messaging
from contact_center.messaging.models import Message

log = logging.getLogger(__name__)

MAX_QUICK_REPLY = 1600


class StaleAction(Conflict):
    """The conversation changed since the operator looked at it; `current` says how it is now."""

    code = "stale"

    def __init__(self, message: str, *, status: str, assignee_id: int | None, assignee_name: str | None, **params):
        super().__init__(message, assignee_name=assignee_name, **params)
        self.current = {"status": status, "assignee_id": assignee_id, "assignee_name": assignee_name}

    def as_dict(self, lang: str | None = None) -> dict:
        return {**super().as_dict(lang), "current": self.current}


def _name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.name).where(User.id == user_id))


def get_conversation(session: Session, conversation_id: int, user: User) -> Conversation:
    """The conversation if `user` may see it: 404 when it does not exist, 403 when it is someone else's."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("no conversation with id {conversation_id}", conversation_id=conversation_id)
    if not can_see(user, conversation):
        raise PermissionDenied("{name} is handling this conversation; only they or a supervisor can open it",
                               name=_name(session, conversation.assignee_id))
    return conversation


def _stale(session: Session, conversation: Conversation, actor: User) -> StaleAction:
    session.refresh(conversation)
    status, assignee_id = conversation.status, conversation.assignee_id
    assignee_name = _name(session, assignee_id)
    current = {"status": status, "assignee_id": assignee_id, "assignee_name": assignee_name}
    if status == "assigned" and assignee_id == actor.id:
        return StaleAction("you already have this conversation", **current)
    if status == "assigned":
        return StaleAction("{assignee_name} is already handling this conversation", **current)
    if status == "done":
        return StaleAction("this conversation was closed in the meantime", **current)
    return StaleAction("this conversation is no longer assigned to anyone", **current)


def _change(session: Session, conversation: Conversation, actor: User | None, kind: str, *, status: str,
            assignee_id: int | None) -> ConversationEvent:
    """Move the conversation only if nobody moved it since we read it; record and announce the change."""
    before_status, before_assignee = conversation.status, conversation.assignee_id
    same_assignee = (Conversation.assignee_id.is_(None) if before_assignee is None
                     else Conversation.assignee_id == before_assignee)
    result = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id, Conversation.status == before_status, same_assignee)
        .values(status=status, assignee_id=assignee_id)
    )
    if result.rowcount != 1:
        raise _stale(session, conversation, actor)
    event = ConversationEvent(conversation_id=conversation.id, kind=kind, at=utcnow(),
                              actor_id=actor.id if actor else None,
                              assignee_id=assignee_id if status == "assigned" else before_assignee,
                              previous_assignee_id=before_assignee)
    session.add(event)
    session.flush()
    _announce(session, conversation, kind, event.id, actor, previous_assignee_id=before_assignee)
    log.info("conversation %d: %s by %s (%s → %s)", conversation.id, kind, actor.username if actor else "system",
             before_status, status)
    return event


_UNCHANGED = object()


def _announce(session: Session, conversation: Conversation, kind: str, event_id: int | None,
              actor: User | None, previous_assignee_id: int | None | object = _UNCHANGED) -> None:
    # Whose it was goes too: whoever could see it before must see it leave their list.
    previous = conversation.assignee_id if previous_assignee_id is _UNCHANGED else previous_assignee_id
    announce(session, "conversation.updated", conversation_id=conversation.id, status=conversation.status,
             assignee_id=conversation.assignee_id, previous_assignee_id=previous,
             unread_count=conversation.unread_count, change=kind, event_id=event_id,
             actor_id=actor.id if actor else None)


def _active_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise InvalidInput("no active operator with id {user_id}", user_id=user_id, field="assignee_id")
    return user


# --- transitions -------------------------------------------------------------------------------

def take(session: Session, conversation_id: int, actor: User) -> Conversation:
    """new → assigned to the actor. Taking what you already have changes nothing; taking what someone
    else has (even one an agent can no longer see) says who has it."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("no conversation with id {conversation_id}", conversation_id=conversation_id)
    if conversation.status == "assigned" and conversation.assignee_id == actor.id:
        return conversation
    if conversation.status != "new":
        raise _stale(session, conversation, actor)
    _change(session, conversation, actor, "taken", status="assigned", assignee_id=actor.id)
    return conversation


def release(session: Session, conversation_id: int, actor: User) -> Conversation:
    """assigned → new, back in the queue: by its assignee or a supervisor."""
    conversation = get_conversation(session, conversation_id, actor)
    if conversation.status != "assigned":
        raise _stale(session, conversation, actor)
    _require_handler(session, conversation, actor, "release")
    _change(session, conversation, actor, "released", status="new", assignee_id=None)
    return conversation


def transfer(session: Session, conversation_id: int, actor: User, assignee_id: int) -> Conversation:
    """Hand the conversation to another operator. The assignee may pass on their own conversation;
    supervisors may assign any open conversation, new or assigned, to anyone."""
    conversation = get_conversation(session, conversation_id, actor)
    target = _active_user(session, assignee_id)
    if conversation.status == "done":
        raise InvalidInput("this conversation is closed; reopen it before assigning it", field="assignee_id")
    if conversation.status == "new" and not is_staff(actor):
        raise PermissionDenied("only supervisors assign new conversations; take it to answer it yourself")
    if conversation.status == "assigned":
        _require_handler(session, conversation, actor, "transfer")
    if conversation.assignee_id == target.id:
        raise InvalidInput("the conversation is already assigned to {target_name}",
                           target_name=target.name, field="assignee_id")
    kind = "transferred" if conversation.status == "assigned" else "assigned"
    _change(session, conversation, actor, kind, status="assigned", assignee_id=target.id)
    return conversation


def close(session: Session, conversation_id: int, actor: User) -> Conversation:
    """new or assigned → done. The assignee stays recorded as who handled it."""
    conversation = get_conversation(session, conversation_id, actor)
    if conversation.status == "done":
        raise _stale(session, conversation, actor)
    if conversation.status == "assigned":
        _require_handler(session, conversation, actor, "close")
    _change(session, conversation, actor, "closed", status="done", assignee_id=conversation.assignee_id)
    return conversation


def reopen(session: Session, conversation_id: int, actor: User) -> Conversation:
    """done → assigned to the operator who reopens it (to write to the customer again)."""
    conversation = get_conversation(session, conversation_id, actor)
    if conversation.status != "done":
        raise _stale(session, conversation, actor)
    _change(session, conversation, actor, "reopened", status="assigned", assignee_id=actor.id)
    return conversation


def mark_read(session: Session, conversation_id: int, actor: User) -> Conversation:
    """The operator has seen the customer's messages: the unread count goes to zero."""
    conversation = get_conversation(session, conversation_id, actor)
    if conversation.unread_count:
        session.execute(update(Conversation).where(Conversation.id == conversation.id).values(unread_count=0))
        _announce(session, conversation, "read", None, actor)
        _send_read_receipt(session, conversation)
    return conversation


def _send_read_receipt(session: Session, conversation: Conversation) -> None:
    """On WhatsApp, the customer sees blue ticks once an operator has read them (a job, after commit)."""
    from contact_center.runtime import current_or_none
    from contact_center.unit_of_work import after_commit

    channel = session.get(Channel, conversation.channel_id)
    if channel.kind != "whatsapp":
        return
    last = session.scalar(select(Message.provider_message_id).where(
        Message.conversation_id == conversation.id, Message.direction == "in",
        Message.provider_message_id.is_not(None)).order_by(Message.id.desc()).limit(1))
    runtime = current_or_none()
    if last and runtime is not None:
        after_commit(session, lambda: runtime.jobs.mark_read(channel.id, last))


# What an operator who does not handle a conversation may not do to it, as the refusal says it.
HANDLER_ACTIONS = {"release": Words("release"), "transfer": Words("transfer"), "close": Words("close")}


def _require_handler(session: Session, conversation: Conversation, actor: User, action: str) -> None:
    if conversation.assignee_id != actor.id and not is_staff(actor):
        raise PermissionDenied("{name} is handling this conversation; only they or a supervisor can {action} it",
                               name=_name(session, conversation.assignee_id), action=HANDLER_ACTIONS[action])


# --- writing to the customer --------------------------------------------------------------------

def check_can_send(session: Session, conversation: Conversation, actor: User) -> None:
    if conversation.status == "assigned" and conversation.assignee_id != actor.id and not is_staff(actor):
        raise PermissionDenied("{name} is handling this conversation; only they or a supervisor can write in it",
                               name=_name(session, conversation.assignee_id))


def _claim_for_writer(session: Session, conversation: Conversation, actor: User) -> None:
    """Writing in a new conversation takes it; writing in a done one reopens it."""
    if conversation.status == "new":
        _change(session, conversation, actor, "taken", status="assigned", assignee_id=actor.id)
    elif conversation.status == "done":
        _change(session, conversation, actor, "reopened", status="assigned", assignee_id=actor.id)


def send(session: Session, conversation_id: int, actor: User, body: str, *, channel_id: int | None = None,
         via: str = "ui", reply_to_message_id: int | None = None) -> Message:
    """Queue a message to the conversation's customer, through its channel or another one
    (answering a WhatsApp customer by SMS). The caller commits, then enqueues the dispatch."""
    conversation, channel, contact = _for_writing(session, conversation_id, actor, channel_id)
    reply_to = None
    if reply_to_message_id is not None:
        reply_to = session.get(Message, reply_to_message_id)
        if reply_to is None or reply_to.conversation_id != conversation.id or reply_to.direction != "in":
            raise InvalidInput("message {reply_to_message_id} is not a customer's message of this conversation",
                               reply_to_message_id=reply_to_message_id,
                               field="reply_to_message_id")
    _claim_for_writer(session, conversation, actor)
    message = messaging.queue_outbound(session, channel=channel, phone=conversation.recipient, body=body,
                                       contact=contact, origin="composer", author_id=actor.id, via=via,
                                       in_reply_to=reply_to, refuse_opted_out=True)
    _claim_other(session, conversation, message, actor)
    return message


def send_template(session: Session, conversation_id: int, actor: User, template_id: int, parameters: dict,
                  *, via: str = "ui") -> Message:
    """Queue a WhatsApp approved template to the conversation's customer (any time: templates are
    what may go once the 24-hour window has closed)."""
    conversation, channel, contact = _for_writing(session, conversation_id, actor, None)
    _claim_for_writer(session, conversation, actor)
    return approved_templates.queue_template(session, channel=channel, phone=conversation.recipient,
                                             contact=contact, template_id=template_id, parameters=parameters,
                                             origin="composer", author_id=actor.id, via=via,
                                             refuse_opted_out=True)


def start_conversation(session: Session, actor: User, contact_id: int, channel_id: int, *, body: str | None = None,
                       template_id: int | None = None, parameters: dict | None = None,
                       via: str = "ui") -> Message:
    """Write to a contact on a channel (the contacts page's "Nova conversa"): in the conversation the
    contact's phone has there, or a new one. A text, or a WhatsApp approved template (what may go
    once the 24-hour window has closed). Refused, sending nothing, for a contact who opted out of the
    channel's kind. Flushes; the caller commits (a refusal must roll back a conversation opened here)."""
    contact = contacts.get_contact(session, contact_id)
    channel = session.get(Channel, channel_id)
    if channel is None or not channel.active:
        raise InvalidInput("escolha um canal ativo", field="channel_id")
    kind = kind_of(channel)
    if kind.opted_out(contact):
        raise InvalidInput("{contact_name} pediu para não receber mensagens por {kind_label}: nada foi enviado. "
                           "Escolha outro canal, ou retire o bloqueio de {kind_label} no contato se o cliente pediu "
                           "para voltar a receber",
                           contact_name=contact.name, kind_label=kind.label, field="channel_id")
    phone = contact.mobile_e164 or contact.phone_e164
    if not phone:
        raise InvalidInput("{contact_name} não tem telefone nem celular: cadastre um número no contato",
                           contact_name=contact.name,
                           field="channel_id")
    conversation = conversation_for(session, channel.id, phones.identify(phone), contact)
    if template_id is not None:
        return send_template(session, conversation.id, actor, template_id, parameters or {}, via=via)
    return send(session, conversation.id, actor, body or "", via=via)


def check_writable(session: Session, conversation_id: int, actor: User) -> None:
    """Whether `actor` may write in the conversation (PermissionDenied / NotFound otherwise)."""
    _for_writing(session, conversation_id, actor, None)


def send_file(session: Session, conversation_id: int, actor: User, *, content: dict, kind: str,
              caption: str | None, filename: str, via: str = "ui") -> Message:
    """Queue a file (kept already: `content`) to the conversation's WhatsApp customer, inside the
    24-hour window like any free-form message."""
    conversation, channel, contact = _for_writing(session, conversation_id, actor, None)
    if channel.kind != "whatsapp":
        raise InvalidInput("files go by WhatsApp only; '{name}' is an {kind} channel", field="file",
                           name=channel.name, kind=channel.kind.upper())
    _claim_for_writer(session, conversation, actor)
    label = {"image": "📷 Imagem", "audio": "🎵 Áudio", "video": "🎬 Vídeo"}.get(kind, f"📄 {filename}")
    return messaging.queue_outbound(session, channel=channel, phone=conversation.recipient,
                                    body=f"{label}: {caption}" if caption else label, contact=contact,
                                    origin="composer", author_id=actor.id, via=via, content_type=kind,
                                    content=content, refuse_opted_out=True)


def send_sms_fallback(session: Session, message_id: int, actor: User, *, via: str = "ui") -> Message:
    """The operator's "send by SMS" on a WhatsApp message that could not be delivered."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound("no message with id {message_id}", message_id=message_id)
    conversation = get_conversation(session, message.conversation_id, actor)
    check_can_send(session, conversation, actor)
    _claim_for_writer(session, conversation, actor)
    sms = fallback.send_by_sms(session, message, author_id=actor.id, via=via)
    _claim_other(session, conversation, sms, actor)
    return sms


def _for_writing(session: Session, conversation_id: int, actor: User, channel_id: int | None):
    conversation = get_conversation(session, conversation_id, actor)
    check_can_send(session, conversation, actor)
    channel = session.get(Channel, channel_id if channel_id is not None else conversation.channel_id)
    if channel is None:
        raise InvalidInput("no channel with id {channel_id}", channel_id=channel_id, field="channel_id")
    contact = session.get(Contact, conversation.contact_id) if conversation.contact_id else None
    return conversation, channel, contact


def _claim_other(session: Session, conversation: Conversation, message: Message, actor: User) -> None:
    if message.conversation_id != conversation.id:  # another channel: its conversation is this operator's too
        other = session.get(Conversation, message.conversation_id)
        if other.status != "assigned" or other.assignee_id is None:
            _claim_for_writer(session, other, actor)


# --- the customer behind the conversation --------------------------------------------------------

def link_contact(session: Session, conversation_id: int, actor: User, contact_id: int) -> Conversation:
    """Say who the customer is: the conversation, its messages and the same phone's conversations on
    other channels that knew no contact all point at this contact from now on."""
    conversation = get_conversation(session, conversation_id, actor)
    contact = contacts.get_contact(session, contact_id)
    if conversation.contact_id == contact.id:
        return conversation
    same_phone = list(session.scalars(select(Conversation.id).where(
        Conversation.phone_key == conversation.phone_key,
        (Conversation.id == conversation.id) | Conversation.contact_id.is_(None))))
    session.execute(update(Conversation).where(Conversation.id.in_(same_phone)).values(contact_id=contact.id))
    session.execute(update(Message).where(Message.conversation_id.in_(same_phone), Message.contact_id.is_(None))
                    .values(contact_id=contact.id))
    session.refresh(conversation)
    event = ConversationEvent(conversation_id=conversation.id, kind="contact_linked", at=utcnow(),
                              actor_id=actor.id, contact_id=contact.id)
    session.add(event)
    session.flush()
    for other_id in same_phone:
        other = session.get(Conversation, other_id)
        _announce(session, other, "contact_linked", event.id if other_id == conversation.id else None, actor)
    return conversation


def create_contact(session: Session, conversation_id: int, actor: User, data: Mapping[str, Any]) -> Contact:
    """A new contact for the conversation's customer (the conversation's number as mobile unless
    another phone is given), linked at once."""
    conversation = get_conversation(session, conversation_id, actor)
    fields = dict(data)
    if not (fields.get("mobile") or "").strip() and not (fields.get("phone") or "").strip():
        fields["mobile"] = conversation.phone_e164
    if not fields.pop("create_anyway", False):  # the customer may be a contact already: link that one
        refuse_phone_duplicates(session, fields)
    contact = contacts.create_contact(session, fields)
    link_contact(session, conversation.id, actor, contact.id)
    return contact


def update_contact(session: Session, conversation_id: int, actor: User, changes: Mapping[str, Any]) -> Contact:
    conversation = get_conversation(session, conversation_id, actor)
    if conversation.contact_id is None:
        raise InvalidInput("this conversation has no contact yet; create or link one first", field="contact")
    contact = contacts.update_contact(session, contacts.get_contact(session, conversation.contact_id), changes)
    _announce(session, conversation, "contact_updated", None, actor)
    return contact


# --- quick replies ---------------------------------------------------------------------------------

def list_quick_replies(session: Session) -> list[QuickReply]:
    return list(session.scalars(select(QuickReply).order_by(QuickReply.title)))


def _clean_quick_reply(title: str, body: str) -> tuple[str, str]:
    title, body = (title or "").strip(), (body or "").strip()
    if not title:
        raise InvalidInput("a quick reply needs a title", field="title")
    if len(title) > 60:
        raise InvalidInput("the title has more than 60 characters", field="title")
    if not body:
        raise InvalidInput("a quick reply needs a text", field="body")
    if len(body) > MAX_QUICK_REPLY:
        raise InvalidInput("the text has {length} characters; the limit is {limit}", field="body", length=len(body),
                           limit=MAX_QUICK_REPLY)
    return title, body


def save_quick_reply(session: Session, actor: User, *, title: str, body: str,
                     quick_reply_id: int | None = None) -> QuickReply:
    title, body = _clean_quick_reply(title, body)
    clash = session.scalar(select(QuickReply.id).where(QuickReply.title == title))
    if clash is not None and clash != quick_reply_id:
        raise Conflict("a quick reply titled '{title}' already exists", title=title, field="title")
    if quick_reply_id is None:
        reply = QuickReply(title=title, body=body, updated_by_id=actor.id)
        session.add(reply)
    else:
        reply = get_quick_reply(session, quick_reply_id)
        reply.title, reply.body, reply.updated_by_id = title, body, actor.id
    session.flush()
    return reply


def get_quick_reply(session: Session, quick_reply_id: int) -> QuickReply:
    reply = session.get(QuickReply, quick_reply_id)
    if reply is None:
        raise NotFound("no quick reply with id {quick_reply_id}", quick_reply_id=quick_reply_id)
    return reply


def delete_quick_reply(session: Session, quick_reply_id: int) -> None:
    session.delete(get_quick_reply(session, quick_reply_id))
    session.flush()
