"""The one writer of whatsapp_templates: the message templates of a WhatsApp channel's business
account as last synced from Meta (`contact-center channels templates sync NAME`, the periodic
job, the admin's button), and their reviews as Meta reports them by webhook. Sends are validated
against these definitions before they go out (providers/whatsapp_cloud/templates.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from contact_center.channels.models import Channel, WhatsAppTemplate
from contact_center.channels.service import build_provider
from contact_center.db import utcnow
from contact_center.errors import InvalidInput, NotFound, ProviderUnavailable
from contact_center.providers.base import ProviderError, supports
from contact_center.providers.whatsapp_cloud.templates import TemplateDefinition, definition_from_graph

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    added: int
    updated: int
    removed: int
    skipped: list[str]  # items Meta listed that we cannot read, with why

    @property
    def total(self) -> int:
        return self.added + self.updated


def sync_templates(session: Session, channel: Channel, settings) -> SyncResult:
    """Replace the channel's templates with what Meta lists now (a ProviderError if it cannot be asked).
    The caller commits."""
    provider = build_provider(channel, settings)
    try:
        if not supports(provider, "templates"):
            raise InvalidInput("channel '{channel_name}' has no approved templates to sync ({channel_provider})",
                               channel_name=channel.name, channel_provider=channel.provider,
                               field="channel")
        listed = list(provider.templates())
    except ProviderError as exc:
        raise ProviderUnavailable("could not read the templates of '{channel_name}': {exc_reason}",
                                  channel_name=channel.name, exc_reason=exc.reason) from None
    finally:
        provider.close()
    current = {(t.name, t.language): t for t in session.scalars(
        select(WhatsAppTemplate).where(WhatsAppTemplate.channel_id == channel.id))}
    seen, skipped, added, updated = set(), [], 0, 0
    now = utcnow()
    for item in listed:
        try:
            definition = definition_from_graph(item)
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        key = (definition.name, definition.language)
        seen.add(key)
        row = current.get(key)
        if row is None:
            row = WhatsAppTemplate(channel_id=channel.id, name=definition.name, language=definition.language)
            session.add(row)
            added += 1
        else:
            updated += 1
        row.template_id, row.status, row.category = definition.id, definition.status, definition.category
        row.status_reason = item.get("rejected_reason") if item.get("rejected_reason") not in (None, "NONE") else None
        row.definition, row.synced_at = item, now
    gone = [row.id for key, row in current.items() if key not in seen]
    if gone:
        session.execute(delete(WhatsAppTemplate).where(WhatsAppTemplate.id.in_(gone)))
    session.flush()
    for problem in skipped:
        log.warning("channel %s: template skipped: %s", channel.name, problem)
    log.info("channel %s: %d templates synced (%d new, %d removed)", channel.name, added + updated, added, len(gone))
    return SyncResult(added, updated, len(gone), skipped)


def sync_all(session_factory, settings) -> dict[str, SyncResult | str]:
    """The hourly job: every active WhatsApp channel's templates, each on its own (one failing
    channel does not stop the others); by channel name, its result or why it failed."""
    from contact_center.db import transaction
    from contact_center.errors import DomainError

    with transaction(session_factory) as session:
        ids = list(session.scalars(select(Channel.id).where(Channel.kind == "whatsapp", Channel.active.is_(True),
                                                            Channel.paused_at.is_(None))))
    results: dict[str, SyncResult | str] = {}
    for channel_id in ids:
        try:
            with transaction(session_factory) as session:
                channel = session.get(Channel, channel_id)
                results[channel.name] = sync_templates(session, channel, settings)
        except DomainError as exc:
            log.warning("channel %d: templates not synced: %s", channel_id, exc.message)
            results[str(channel_id)] = exc.message
    return results


def record_review(session: Session, channel_id: int, name: str, language: str | None, status: str,
                  reason: str | None) -> int:
    """Meta's review of a template (message_template_status_update); the rows it changed."""
    condition = [WhatsAppTemplate.channel_id == channel_id, WhatsAppTemplate.name == name]
    if language:
        condition.append(WhatsAppTemplate.language == language)
    changed = session.execute(update(WhatsAppTemplate).where(*condition)
                              .values(status=status, status_reason=reason, synced_at=utcnow())).rowcount
    log.info("WhatsApp template %s (%s) is now %s%s", name, language, status, f": {reason}" if reason else "")
    return changed


def list_templates(session: Session, channel_id: int) -> list[WhatsAppTemplate]:
    return list(session.scalars(select(WhatsAppTemplate).where(WhatsAppTemplate.channel_id == channel_id)
                                .order_by(WhatsAppTemplate.name, WhatsAppTemplate.language)))


def get_template(session: Session, channel_id: int, template_id: int) -> WhatsAppTemplate:
    template = session.get(WhatsAppTemplate, template_id)
    if template is None or template.channel_id != channel_id:
        raise NotFound("no WhatsApp template {template_id} on this channel; sync the channel's templates",
                       template_id=template_id,
                       field="template_id")
    return template


def definition(template: WhatsAppTemplate) -> TemplateDefinition:
    """The synced definition, with the status the last review gave it."""
    return definition_from_graph({**template.definition, "status": template.status})
