"""The inbox over HTTP: the same routes serve API clients (Bearer token) and the web UI (session
cookie + CSRF token)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request, Response, UploadFile, status

from contact_center.contacts.schemas import ContactOut
from contact_center.contacts.service import get_contact
from contact_center.deps import DbSession
from contact_center.errors import InvalidInput
from contact_center.inbox import queries, workflow
from contact_center.inbox.schemas import (
    Compose,
    ComposeTemplate,
    ContactChanges,
    ConversationOut,
    ConversationPage,
    LinkContact,
    NewContact,
    QuickReplyIn,
    QuickReplyOut,
    Rendered,
    RenderTemplate,
    TimelineEvent,
    TimelineMessage,
    TimelineOut,
    Transfer,
)
from contact_center.messaging import attempts, fallback, media
from contact_center.providers.whatsapp_cloud.media import MediaRejected, max_bytes_for
from contact_center.messaging.schemas import AttemptOut, MessageOut
from contact_center.messaging.segments import count_segments
from contact_center.templates.service import get_template, render_for
from contact_center.unit_of_work import after_commit
from contact_center.translations import say_stored
from contact_center.web.i18n import request_language
from contact_center.web.session import Operator, SupervisorOperator
from contact_center.routes import CheckedRoute

router = APIRouter(prefix="/api", tags=["inbox"], route_class=CheckedRoute)


def _row(session, user, conversation_id: int) -> ConversationOut:
    workflow.get_conversation(session, conversation_id, user)  # 404 / 403 with the reason
    session.flush()
    row = queries.conversation_row(session, user, conversation_id)
    return ConversationOut.model_validate(row)


@router.get("/conversations", response_model=ConversationPage)
def list_conversations(
    session: DbSession, user: Operator,
    view: str = Query("all", description="all (what you may see), mine, unassigned"),
    status_: str = Query("open", alias="status", description="open (new or assigned), new, assigned, done, any"),
    channel_id: int | None = None,
    q: str = Query("", max_length=100, description="A contact's name, or a phone in any written form."),
    before: str | None = Query(None, description="The `next_cursor` of the previous page."),
    limit: int = Query(50, ge=1, le=queries.MAX_PAGE),
):
    filter_ = queries.InboxFilter(view=view, status=status_, channel_id=channel_id, search=q)
    page = queries.list_conversations(session, user, filter_, before=before, limit=limit)
    return ConversationPage(items=[ConversationOut.model_validate(r) for r in page.rows], total=page.total,
                            next_cursor=page.next_cursor, unread_total=queries.unread_total(session, user))


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
def get_conversation(conversation_id: int, session: DbSession, user: Operator):
    return _row(session, user, conversation_id)


@router.get("/conversations/{conversation_id}/timeline", response_model=TimelineOut)
def get_timeline(conversation_id: int, request: Request, session: DbSession, user: Operator,
                 before: int | None = Query(None, description="A message id: the entries before it."),
                 limit: int = Query(100, ge=1, le=queries.MAX_TIMELINE)):
    conversation = workflow.get_conversation(session, conversation_id, user)
    found = queries.timeline(session, conversation, user, before_id=before, limit=limit)
    messages = [e.message for e in found.entries if isinstance(e, queries.MessageEntry)]
    offers = fallback.offered(session, messages)
    tries = attempts.history(session, [m.id for m in messages if m.direction == "out"])
    lang = request_language(request)
    entries = []
    for entry in found.entries:
        if isinstance(entry, queries.MessageEntry):
            m = entry.message
            entries.append(TimelineMessage(
                id=m.id, conversation_id=m.conversation_id, channel_id=m.channel_id, channel_name=entry.channel_name,
                channel_kind=entry.channel_kind, direction=m.direction, origin=m.origin, body=m.body, status=m.status,
                status_reason=say_stored(m.status_reason, lang), segments=m.segments, author_name=entry.author_name,
                at=entry.at,
                content_type=m.content_type, content=m.content, in_reply_to_id=m.in_reply_to_id, read_at=m.read_at,
                played_at=m.played_at, fallback_of_id=m.fallback_of_id,
                sms_fallback_available=m.id in offers,
                attempt_history=[AttemptOut.said(a, lang) for a in tries.get(m.id, [])]))
        else:
            entries.append(TimelineEvent(
                id=entry.event_id, conversation_id=entry.conversation_id, change=entry.change, at=entry.at,
                actor_name=entry.actor_name, assignee_name=entry.assignee_name,
                previous_assignee_name=entry.previous_assignee_name, contact_name=entry.contact_name))
    return TimelineOut(entries=entries, has_older=found.has_older, oldest_message_id=found.oldest_message_id)


@router.post("/conversations/{conversation_id}/take", response_model=ConversationOut)
def take(conversation_id: int, session: DbSession, user: Operator):
    """Assign a new conversation to yourself. 409 `stale` (naming who has it) when someone was quicker."""
    workflow.take(session, conversation_id, user)
    return _row(session, user, conversation_id)


@router.post("/conversations/{conversation_id}/release", response_model=ConversationOut)
def release(conversation_id: int, session: DbSession, user: Operator):
    workflow.release(session, conversation_id, user)
    return _row(session, user, conversation_id)


@router.post("/conversations/{conversation_id}/transfer", response_model=ConversationOut)
def transfer(conversation_id: int, body: Transfer, session: DbSession, user: Operator):
    workflow.transfer(session, conversation_id, user, body.assignee_id)
    row = queries.conversation_row(session, user, conversation_id)
    if row is None:  # an agent who passed their conversation on no longer sees it
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return ConversationOut.model_validate(row)


@router.post("/conversations/{conversation_id}/close", response_model=ConversationOut)
def close(conversation_id: int, session: DbSession, user: Operator):
    workflow.close(session, conversation_id, user)
    return _row(session, user, conversation_id)


@router.post("/conversations/{conversation_id}/reopen", response_model=ConversationOut)
def reopen(conversation_id: int, session: DbSession, user: Operator):
    workflow.reopen(session, conversation_id, user)
    return _row(session, user, conversation_id)


@router.post("/conversations/{conversation_id}/read", response_model=ConversationOut)
def mark_read(conversation_id: int, session: DbSession, user: Operator):
    workflow.mark_read(session, conversation_id, user)
    return _row(session, user, conversation_id)


@router.post("/conversations/{conversation_id}/messages", response_model=MessageOut,
             status_code=status.HTTP_202_ACCEPTED)
def send(conversation_id: int, body: Compose, request: Request, session: DbSession, user: Operator):
    """Queue a message to the customer. Writing in a new conversation takes it; in a closed one, reopens it;
    in someone else's, only a supervisor may (403 otherwise)."""
    via = "api" if request.headers.get("authorization") else "ui"
    message = workflow.send(session, conversation_id, user, body.body, channel_id=body.channel_id, via=via,
                            reply_to_message_id=body.reply_to_message_id)
    _dispatch_after_commit(session, request, message)
    return MessageOut.said(message, request_language(request))


@router.post("/conversations/{conversation_id}/template", response_model=MessageOut,
             status_code=status.HTTP_202_ACCEPTED)
def send_template(conversation_id: int, body: ComposeTemplate, request: Request, session: DbSession, user: Operator):
    """Queue a WhatsApp approved template, validated against its synced definition first (422 naming
    the parameter otherwise). Templates may go when the 24-hour window has closed."""
    via = "api" if request.headers.get("authorization") else "ui"
    message = workflow.send_template(session, conversation_id, user, body.template_id, body.parameters, via=via)
    _dispatch_after_commit(session, request, message)
    return MessageOut.said(message, request_language(request))


@router.post("/conversations/{conversation_id}/attachments", response_model=MessageOut,
             status_code=status.HTTP_202_ACCEPTED)
def send_file(conversation_id: int, request: Request, session: DbSession, user: Operator,
              file: UploadFile, caption: str | None = Form(None, max_length=1024)):
    """Send a file to a WhatsApp customer: images (JPEG, PNG) as images, audio and MP4 video with a
    player, anything else as a document with its name. Kept, then uploaded to WhatsApp and sent
    by id. WhatsApp's limits apply (image 5 MB, audio and video 16 MB, document 100 MB)."""
    mime_type = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
    kind = media.kind_to_send(mime_type)
    limit = max_bytes_for(mime_type, kind)
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise InvalidInput("the file is larger than WhatsApp's limit for a {kind} ({megabytes} MB)", field="file",
                           kind=kind, megabytes=limit // 2**20)
    filename = (file.filename or "arquivo").replace("/", "_").replace("\\", "_")[:200]
    workflow.check_writable(session, conversation_id, user)  # before anything is kept
    try:
        kept = media.keep_outgoing(request.app.state.settings, content, mime_type, filename, caption or None)
    except MediaRejected as exc:
        raise InvalidInput("the file cannot be sent: {exc_reason}", exc_reason=exc.reason, field="file") from None
    via = "api" if request.headers.get("authorization") else "ui"
    message = workflow.send_file(session, conversation_id, user, content=kept, kind=kind, caption=caption or None,
                                 filename=filename, via=via)
    _dispatch_after_commit(session, request, message)
    return MessageOut.said(message, request_language(request))


@router.post("/messages/{message_id}/sms-fallback", response_model=MessageOut, status_code=status.HTTP_202_ACCEPTED)
def send_sms_fallback(message_id: int, request: Request, session: DbSession, user: Operator):
    """Send a WhatsApp message that could not be delivered (not on WhatsApp, or the 24-hour window
    closed) again by SMS, to the same customer; the SMS points at it (`fallback_of_id`)."""
    via = "api" if request.headers.get("authorization") else "ui"
    message = workflow.send_sms_fallback(session, message_id, user, via=via)
    _dispatch_after_commit(session, request, message)
    return MessageOut.said(message, request_language(request))


def _dispatch_after_commit(session, request: Request, message) -> None:
    if message.status == "queued":
        jobs = request.app.state.runtime.jobs
        message_id = message.id
        after_commit(session, lambda: jobs.dispatch([message_id]))


@router.post("/conversations/{conversation_id}/render-template", response_model=Rendered)
def render_template(conversation_id: int, body: RenderTemplate, request: Request, session: DbSession,
                    user: Operator):
    """A template rendered for this conversation's contact, for the operator to edit before sending."""
    conversation = workflow.get_conversation(session, conversation_id, user)
    if conversation.contact_id is None:
        raise InvalidInput("templates need a contact: link or create the contact first", field="template_id")
    text = render_for(get_template(session, body.template_id).body, get_contact(session, conversation.contact_id),
                      user, request.app.state.settings)
    info = count_segments(text)
    return Rendered(text=text, encoding=info.encoding, segments=info.segments)


@router.post("/conversations/{conversation_id}/contact", response_model=ContactOut)
def link_contact(conversation_id: int, body: LinkContact, session: DbSession, user: Operator):
    conversation = workflow.link_contact(session, conversation_id, user, body.contact_id)
    return get_contact(session, conversation.contact_id)


@router.post("/conversations/{conversation_id}/contact/new", response_model=ContactOut,
             status_code=status.HTTP_201_CREATED)
def create_contact(conversation_id: int, body: NewContact, session: DbSession, user: Operator):
    return workflow.create_contact(session, conversation_id, user, body.model_dump())


@router.patch("/conversations/{conversation_id}/contact", response_model=ContactOut)
def update_contact(conversation_id: int, body: ContactChanges, session: DbSession, user: Operator):
    return workflow.update_contact(session, conversation_id, user, body.model_dump(exclude_unset=True))


@router.get("/quick-replies", response_model=list[QuickReplyOut])
def list_quick_replies(session: DbSession, _: Operator):
    return workflow.list_quick_replies(session)


@router.post("/quick-replies", response_model=QuickReplyOut, status_code=status.HTTP_201_CREATED)
def create_quick_reply(body: QuickReplyIn, session: DbSession, user: SupervisorOperator):
    return workflow.save_quick_reply(session, user, title=body.title, body=body.body)


@router.put("/quick-replies/{quick_reply_id}", response_model=QuickReplyOut)
def update_quick_reply(quick_reply_id: int, body: QuickReplyIn, session: DbSession, user: SupervisorOperator):
    return workflow.save_quick_reply(session, user, title=body.title, body=body.body, quick_reply_id=quick_reply_id)


@router.delete("/quick-replies/{quick_reply_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_quick_reply(quick_reply_id: int, session: DbSession, _: SupervisorOperator):
    workflow.delete_quick_reply(session, quick_reply_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
