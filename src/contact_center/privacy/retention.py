"""Retention (CONTACT_CENTER_RETENTION_DAYS): message texts and media, and the raw provider
callbacks that repeat them, are erased once older than N days. Off (0) by default.

The job walks each table in id order, a batch per transaction, up to the newest row older than
the cut-off (found by a binary search over ids, which follow time: no index on the times is
needed). Each batch writes an audit entry saying up to which id it went; the next run starts
there, so a run is cheap when nothing is new, and one stopped halfway resumes where it was."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from contact_center.audit.models import AuditEntry
from contact_center.audit.service import record
from contact_center.db import transaction, utcnow
from contact_center.messaging.models import Message
from contact_center.messaging.redaction import erase_content
from contact_center.settings import Settings
from contact_center.webhooks import events
from contact_center.webhooks.models import WebhookEvent

log = logging.getLogger(__name__)
BATCH = 1000
ACTION = "messages.retention"
WAITING = ("scheduled", "queued", "sending", "unknown")


@dataclass
class RetentionRun:
    messages: int = 0
    media_files: int = 0
    webhook_events: int = 0


def apply_retention(session_factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None,
                    batch: int = BATCH) -> RetentionRun:
    """Erase what is older than settings.retention_days; commits a batch at a time."""
    run = RetentionRun()
    if not settings.retention_days:
        return run
    cutoff = (now or utcnow()) - timedelta(days=settings.retention_days)
    with transaction(session_factory) as session:
        message_bound = _last_id_before(session, Message.__table__.c.id, Message.__table__.c.created_at, cutoff)
        event_bound = _last_id_before(session, WebhookEvent.__table__.c.id, WebhookEvent.__table__.c.received_at,
                                      cutoff)
    while True:
        with transaction(session_factory) as session:
            start = _watermark(session, "message")
            rows = session.execute(select(Message.id, Message.status).where(
                Message.id > start, Message.id <= message_bound).order_by(Message.id).limit(batch)).all()
            if not rows:
                break
            # A message still on its way out (a paused campaign's) keeps its text: it is sent as written.
            ids = [message_id for message_id, status in rows if status not in WAITING]
            files = erase_content(session, ids, settings)
            record(session, action=ACTION, subject_type="message", subject_id=None, via="job", up_to_id=rows[-1].id,
                   messages=len(ids), media_files=files, older_than_days=settings.retention_days)
            run.messages, run.media_files = run.messages + len(ids), run.media_files + files
    while True:
        with transaction(session_factory) as session:
            start = _watermark(session, "webhook_event")
            # A callback whose handling failed is kept whole: it is retried from its raw body.
            ids = list(session.scalars(select(WebhookEvent.id).where(
                WebhookEvent.id > start, WebhookEvent.id <= event_bound).order_by(WebhookEvent.id).limit(batch)))
            if not ids:
                break
            kept = set(session.scalars(select(WebhookEvent.id).where(WebhookEvent.id.in_(ids),
                                                                     WebhookEvent.outcome == "error")))
            events.erase_payloads(session, [i for i in ids if i not in kept], lambda detail: detail)
            record(session, action=ACTION, subject_type="webhook_event", subject_id=None, via="job",
                   up_to_id=ids[-1], webhook_events=len(ids) - len(kept), older_than_days=settings.retention_days)
            run.webhook_events += len(ids) - len(kept)
    if run.messages or run.webhook_events:
        log.info("retention (%d days): erased the content of %d messages, %d media files, %d provider callbacks",
                 settings.retention_days, run.messages, run.media_files, run.webhook_events)
    return run


def _watermark(session: Session, subject_type: str) -> int:
    """The last id a previous batch erased (read from its audit entry; the action's index serves it)."""
    detail = session.scalar(select(AuditEntry.detail).where(AuditEntry.action == ACTION,
                                                            AuditEntry.subject_type == subject_type)
                            .order_by(AuditEntry.id.desc()).limit(1))
    return int(detail["up_to_id"]) if detail else 0


def _last_id_before(session: Session, id_column, time_column, cutoff: datetime) -> int:
    """The largest id whose row is older than `cutoff`, 0 when none: a binary search over the ids,
    each probe one primary-key lookup."""
    low, high = 0, session.scalar(select(func.max(id_column))) or 0
    while low < high:
        middle = (low + high + 1) // 2
        probe = session.execute(select(id_column, time_column).where(id_column >= middle)
                                .order_by(id_column).limit(1)).first()
        if probe is not None and probe[1] < cutoff:
            low = probe[0]
        else:
            high = middle - 1
    return low
