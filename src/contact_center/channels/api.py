from __future__ import annotations

from fastapi import APIRouter, Request, status

from contact_center.channels import service
from contact_center.channels import whatsapp_templates
from contact_center.channels.schemas import (
    ChannelCreate, ChannelOut, ChannelUpdate, TemplateSyncOut, WebhookUrls, WhatsAppTemplateOut,
)
from contact_center.deps import AdminUser, AgentUser, DbSession
from contact_center.messaging.schemas import ChannelStatus
from contact_center.messaging.status import channel_status
from contact_center.routes import CheckedRoute
from contact_center.unit_of_work import after_commit
from contact_center.web.i18n import request_language
from contact_center.web.session import Operator

router = APIRouter(prefix="/api/channels", tags=["channels"], route_class=CheckedRoute)


@router.get("", response_model=list[ChannelOut])
def list_channels(session: DbSession, _: AgentUser):
    return service.list_channels(session)


@router.post("", response_model=ChannelOut, status_code=status.HTTP_201_CREATED)
def create_channel(body: ChannelCreate, session: DbSession, user: AdminUser):
    return service.create_channel(session, name=body.name, provider=body.provider, credentials=body.credentials,
                                  settings=body.settings, actor_id=user.id)


@router.get("/{channel_id}", response_model=ChannelOut)
def get_channel(channel_id: int, session: DbSession, _: AgentUser):
    return service.get_channel(session, channel_id)


@router.patch("/{channel_id}", response_model=ChannelOut)
def update_channel(channel_id: int, body: ChannelUpdate, request: Request, session: DbSession, user: AdminUser):
    """A paused channel (its provider refused the account) resumes when an admin changes it; the
    messages that waited go out then."""
    channel = service.get_channel(session, channel_id)
    was_paused = channel.paused_at is not None
    channel = service.update_channel(session, channel, name=body.name, credentials=body.credentials,
                                     settings=body.settings, active=body.active, actor_id=user.id)
    if was_paused and channel.paused_at is None:
        waiting = service.queued_message_ids(session, channel.id)
        jobs = request.app.state.runtime.jobs
        after_commit(session, lambda: jobs.dispatch(waiting) if waiting else None)
    return channel


@router.get("/{channel_id}/webhooks", response_model=WebhookUrls)
def channel_webhooks(channel_id: int, request: Request, session: DbSession, _: AdminUser):
    """The callback URLs to paste in the provider's panel. They carry the channel's secret: admins only."""
    return _webhooks(service.get_channel(session, channel_id), request)


@router.post("/{channel_id}/webhooks/rotate", response_model=WebhookUrls)
def rotate_webhook_secret(channel_id: int, request: Request, session: DbSession, user: AdminUser):
    """A new secret: the old URLs stop working at once (update them at the provider)."""
    channel = service.rotate_webhook_secret(session, service.get_channel(session, channel_id), actor_id=user.id)
    return _webhooks(channel, request)


def _webhooks(channel, request: Request) -> WebhookUrls:
    urls = service.webhook_urls(channel, request.app.state.settings.public_base_url)
    return WebhookUrls(**urls, verify_token=(channel.credentials or {}).get("verify_token"))


@router.get("/{channel_id}/status", response_model=ChannelStatus)
def get_channel_status(channel_id: int, request: Request, session: DbSession, _: AgentUser):
    """Reach the provider and read the balance (the seed's "Check Status")."""
    channel = service.get_channel(session, channel_id)
    session.commit()  # release the database (the write lock, on SQLite) before calling the provider
    state = channel_status(channel, request.app.state.settings, request_language(request))
    return ChannelStatus(channel_id=channel.id, name=channel.name, provider=channel.provider,
                         sandbox=channel.is_sandbox, ok=state.ok, balance=state.balance,
                         balance_text=state.balance_text, error=state.error, details=state.details,
                         paused_reason=state.paused_reason)


@router.get("/{channel_id}/whatsapp-templates", response_model=list[WhatsAppTemplateOut])
def list_whatsapp_templates(channel_id: int, session: DbSession, _: Operator):
    """The channel's templates as last synced from Meta (the composer offers the sendable ones)."""
    service.get_channel(session, channel_id)
    return [_template_out(template) for template in whatsapp_templates.list_templates(session, channel_id)]


@router.post("/{channel_id}/whatsapp-templates/sync", response_model=TemplateSyncOut)
def sync_whatsapp_templates(channel_id: int, request: Request, session: DbSession, _: AdminUser):
    """Read the business account's templates from Meta again."""
    channel = service.get_channel(session, channel_id)
    result = whatsapp_templates.sync_templates(session, channel, request.app.state.settings)
    return TemplateSyncOut(added=result.added, updated=result.updated, removed=result.removed, skipped=result.skipped)


def _template_out(template) -> WhatsAppTemplateOut:
    definition = whatsapp_templates.definition(template)
    return WhatsAppTemplateOut(
        id=template.id, name=template.name, language=template.language, status=template.status,
        category=template.category, status_reason=template.status_reason, sendable=definition.sendable,
        parameter_format=definition.parameter_format, body_text=definition.body_text,
        body_parameters=list(definition.body_parameters), header_format=definition.header_format,
        header_parameters=list(definition.header_parameters),
        buttons=[{"index": b.index, "type": b.type, "text": b.text, "parameter": b.parameter} for b in definition.buttons],
        synced_at=template.synced_at)
