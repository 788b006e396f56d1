from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse
from sqlalchemy import select

from contact_center.campaigns import service as campaigns
from contact_center.campaigns import content as campaign_content
from contact_center.campaigns.windows import ALWAYS
from contact_center.channels import service as channels
from contact_center.contacts.service import find_by_phone, get_contact
from contact_center.deps import AgentUser, DbSession, SupervisorUser
from contact_center.errors import InvalidInput, NotFound
from contact_center.inbox.visibility import visible_messages
from contact_center.inbox.workflow import get_conversation
from contact_center.messaging import service
from contact_center.messaging.models import Message
from contact_center.messaging import attempts, media
from contact_center.messaging.schemas import AttemptOut, BulkPlanOut, BulkSend, MessageOut, SmsSend
from contact_center.messaging.status import channel_status
from contact_center.templates.service import get_template, render_for
from contact_center.unit_of_work import after_commit
from contact_center.routes import CheckedRoute
from contact_center.web.i18n import request_language
from contact_center.web.session import Operator

router = APIRouter(prefix="/api", tags=["sms"], route_class=CheckedRoute)


def _channel(session, channel_id: int | None):
    return channels.get_channel(session, channel_id) if channel_id else channels.default_channel(session, "sms")


@router.post("/sms", response_model=MessageOut, status_code=status.HTTP_202_ACCEPTED)
def send_sms(body: SmsSend, request: Request, session: DbSession, user: AgentUser):
    """Queue one SMS. 202: stored and queued (or blocked when Kolmeya refuses the number); delivery is
    reported later. 409 `opted_out`, storing nothing, for a contact who opted out of SMS."""
    channel = _channel(session, body.channel_id)
    contact = get_contact(session, body.contact_id) if body.contact_id else None
    phone = body.to or (contact.mobile or contact.phone if contact else None)
    if not phone:
        raise InvalidInput("contact {contact_id} has no phone or mobile; add one to the contact, or send with 'to' "
                           "instead", contact_id=contact.id, field="contact_id")
    text = body.body
    if body.template_id is not None:
        if contact is None:
            contact = find_by_phone(session, phone)
        if contact is None:
            raise InvalidInput("a template needs a known contact; create the contact first", field="template_id")
        text = render_for(get_template(session, body.template_id).body, contact, user, request.app.state.settings)
    message = service.queue_outbound(session, channel=channel, phone=phone, body=text, contact=contact,
                                     origin="api", author_id=user.id, refuse_opted_out=True)
    if message.status == "queued":
        jobs = request.app.state.runtime.jobs
        after_commit(session, lambda: jobs.dispatch([message.id]))
    return MessageOut.said(message, request_language(request))


def _visible_message(session, message_id: int, user) -> Message:
    """403 when the message is in a conversation another agent is handling."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound("no message with id {message_id}", message_id=message_id)
    get_conversation(session, message.conversation_id, user)  # the conversation's rule is the message's
    return message


@router.get("/messages/{message_id}", response_model=MessageOut)
def get_message(message_id: int, request: Request, session: DbSession, user: AgentUser):
    """403 when the message is in a conversation another agent is handling."""
    return MessageOut.said(_visible_message(session, message_id, user), request_language(request))


@router.get("/messages/{message_id}/attempts", response_model=list[AttemptOut])
def get_message_attempts(message_id: int, request: Request, session: DbSession, user: AgentUser):
    """Every try at sending the message, oldest first: the backoff between them, what the provider
    answered, what was held back by the channel's rate limit. 403 as for the message itself."""
    _visible_message(session, message_id, user)
    lang = request_language(request)
    return [AttemptOut.said(a, lang) for a in attempts.history(session, [message_id]).get(message_id, [])]


INLINE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}


@router.get("/messages/{message_id}/media", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}})
def get_message_media(message_id: int, request: Request, session: DbSession, user: Operator):
    """The file a customer sent with this message (image, voice note, document…), once fetched;
    404 saying so while it is not."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound("no message with id {message_id}", message_id=message_id)
    get_conversation(session, message.conversation_id, user)
    path, mime_type, filename = media.stored_file(message, request.app.state.settings)
    if not path.is_file():
        raise NotFound("the file of message {message_id} is missing from the data directory",
                       message_id=message_id, field="media")
    # A customer's file is theirs, not ours: shown inline only for types a browser cannot run
    # (never SVG or HTML), and sandboxed whatever it claims to be.
    inline = mime_type in INLINE_TYPES or mime_type.split("/")[0] in ("audio", "video")
    return FileResponse(path, media_type=mime_type, filename=filename or path.name,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "sandbox; default-src 'none'"})


@router.get("/messages", response_model=list[MessageOut])
def list_messages(
    request: Request, session: DbSession, user: AgentUser, contact_id: int | None = None,
    conversation_id: int | None = None,
    campaign_id: int | None = None, status_: str | None = Query(None, alias="status"),
    limit: int = Query(50, ge=1, le=500), before_id: int | None = Query(None, description="For paging back."),
):
    """Newest first; only what you may see (agents: unassigned conversations and their own)."""
    query = select(Message).order_by(Message.id.desc()).limit(limit)
    visible = visible_messages(user)
    if visible is not None:
        query = query.where(visible)
    for column, value in ((Message.contact_id, contact_id), (Message.conversation_id, conversation_id),
                          (Message.campaign_id, campaign_id), (Message.status, status_)):
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(Message.id < before_id)
    lang = request_language(request)
    return [MessageOut.said(m, lang) for m in session.scalars(query)]


@router.post("/sms/bulk", response_model=BulkPlanOut)
def bulk_send(body: BulkSend, request: Request, session: DbSession, user: SupervisorUser):
    """Preview (confirm=false) or start (confirm=true) a templated send to many contacts."""
    settings = request.app.state.settings
    channel = _channel(session, body.channel_id)
    text = get_template(session, body.template_id).body if body.template_id else body.body
    # Release the database before calling the provider (and before start_bulk's own transactions):
    # on SQLite this session holds the write lock, which webhooks and dispatch wait for.
    session.commit()
    state = channel_status(channel, settings, request_language(request))
    audience = campaigns.check_audience(body.audience)
    render = campaign_content.render_for(session, channel, body=text, whatsapp_template_id=None, parameters=None,
                                         user=user, settings=settings)
    plan = campaigns.plan_bulk(session, campaigns.audience_source(audience)(session), channel=channel, render=render)
    campaign_id = None
    if body.confirm:  # a campaign that starts now, at any hour: its recipients are stored by a job
        campaign = campaigns.create_campaign(
            session, name=body.name, channel_id=channel.id, body=text, template_id=body.template_id,
            audience=audience, user=user, settings=settings, send_window=ALWAYS, start=True)
        campaign_id = campaign.id
        session.commit()
        request.app.state.runtime.jobs.build_campaign(campaign_id)
    cost = plan.estimated_cost
    return BulkPlanOut(
        recipients=plan.recipients, sendable=plan.sendable, opted_out=plan.opted_out, segments=plan.segments,
        estimated_cost=cost, balance=state.balance, balance_error=state.error,
        enough_balance=None if cost is None or state.balance is None else state.balance >= cost,
        preview=plan.preview, rejected=[asdict(r) for r in plan.rejected[:1000]], campaign_id=campaign_id,
    )


