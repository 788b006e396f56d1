"""Retention: with CONTACT_CENTER_RETENTION_DAYS set, texts, media and raw callbacks older than N
days are erased a batch at a time, logged in the audit log, and a second run finds nothing to do;
the message rows stay. Off by default."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from contact_center.audit.models import AuditEntry
from contact_center.db import utcnow
from contact_center.messaging.media import store_for
from contact_center.messaging.models import Message
from contact_center.privacy.retention import apply_retention
from contact_center.settings import Settings
from contact_center.webhooks.events import ERASED_PAYLOAD
from contact_center.webhooks.models import WebhookEvent


def statuses_of(db) -> dict[int, str]:
    return {row[0]: row[1] for row in db.execute(select(Message.id, Message.status))}


def test_old_texts_media_and_callbacks_are_erased_in_batches_once(db, session_factory, settings, customers):
    maria, bruno = customers["maria"], customers["bruno"]
    # Everything up to Maria's last message before Bruno's is 40 days old (times follow ids, as in life).
    first_of_bruno = db.scalar(select(Message.id).where(Message.contact_id == bruno.contact_id).order_by(Message.id))
    last_old_event = db.scalar(select(WebhookEvent.id).where(WebhookEvent.message_id < first_of_bruno)
                               .order_by(WebhookEvent.id.desc()))
    old = utcnow() - timedelta(days=40)
    db.execute(update(Message).where(Message.id < first_of_bruno).values(created_at=old))
    db.execute(update(WebhookEvent).where(WebhookEvent.id <= last_old_event).values(received_at=old))
    db.commit()
    statuses = statuses_of(db)
    maria_file, bruno_file = (store_for(settings).path_for(c.media_sha, "image/png") for c in (maria, bruno))

    assert apply_retention(session_factory, settings).messages == 0  # off by default: nothing happens
    kept = Settings(**{**settings.model_dump(), "retention_days": 30}, _env_file=None)
    run = apply_retention(session_factory, kept, batch=2)

    db.expire_all()
    old_ones = db.scalars(select(Message).where(Message.id < first_of_bruno)).all()
    assert run.messages == len(old_ones) == 4 and run.media_files == 1 and run.webhook_events >= 1
    assert all(m.body == "" and m.content is None for m in old_ones)
    assert not maria_file.exists() and bruno_file.is_file()
    recent = db.scalars(select(Message).where(Message.id >= first_of_bruno)).all()
    assert all(m.body for m in recent) and {m.body for m in recent} >= set(bruno.texts[:3])
    assert statuses_of(db) == statuses  # every row, as it was
    events = db.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert all((e.payload == ERASED_PAYLOAD) == (e.id <= last_old_event) for e in events if e.outcome != "error")

    batches = db.scalars(select(AuditEntry).where(AuditEntry.action == "messages.retention",
                                                  AuditEntry.subject_type == "message")).all()
    assert [b.detail["messages"] for b in batches] == [2, 2] and batches[-1].detail["up_to_id"] == old_ones[-1].id
    assert {b.via for b in batches} == {"job"} and {b.actor_kind for b in batches} == {"system"}

    again = apply_retention(session_factory, kept, batch=2)
    assert (again.messages, again.webhook_events) == (0, 0)
