"""reply ids that start with the reply's time

Replies that Kolmeya sends without an id get one from a hash of their content. Their ids now
start with the reply's UTC time (YYYYMMDDHHMMSS-sha256:...), so the unique indexes over them grow
at their end (providers/kolmeya/webhooks.py, _reply_id). This gives the replies stored before the
same form, in their webhook event and their message, whether a webhook or the reply poller
stored them, so that a replay of one of them is still recognised: a webhook's payload is read
again by its provider's parser, which gives the id a replay of it would get. Replies whose
payload has no readable time keep the bare hash, as new ones do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 02:40:00
"""

import logging
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from contact_center.providers.base import WebhookPayloadError
from contact_center.providers.kolmeya.webhooks import time_first
from contact_center.providers.registry import PROVIDERS
from contact_center.webhooks.service import PayloadRejected, decode

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

BATCH = 1000
PREFIX_LENGTH = len("YYYYMMDDHHMMSS-")

_events = sa.table("webhook_events", sa.column("id", sa.Integer), sa.column("source", sa.String),
                   sa.column("external_id", sa.String), sa.column("payload", sa.Text),
                   sa.column("message_id", sa.Integer))
_messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("provider_message_id", sa.String))


RENAMED = {"sandbox": "kolmeya_sandbox"}


def _time_first_id(source: str, external_id: str, payload: str) -> str | None:
    """The id the code gives this stored reply now, when it is `external_id` with the time in
    front; None when the reply keeps its id (no readable time, or a payload no parser reads)."""
    try:
        body = decode(payload.encode())  # the bytes the webhook received, read the way it read them
    except PayloadRejected:
        return None
    if not isinstance(body, dict):
        return None
    if body.get("recovered_by") == "poll":  # messaging/recovery.py: the parsed reply, time in UTC
        try:
            new_id = time_first(external_id, datetime.fromisoformat(body["reply"]["received_at"]))
        except (KeyError, TypeError, ValueError):
            return None
    else:
        name = source.partition(".")[0]
        # Revision 0007 renamed the Kolmeya sandbox provider; rows this revision meets still say "sandbox".
        spec = PROVIDERS.get(RENAMED.get(name, name))
        if spec is None or spec.parse_reply is None:
            return None
        try:
            new_id = spec.parse_reply(body).external_id
        except WebhookPayloadError:
            return None
    return new_id if new_id.endswith(f"-{external_id}") else None


def upgrade() -> None:
    bind = op.get_bind()
    last, changed = 0, 0
    while True:
        rows = bind.execute(
            sa.select(_events.c.id, _events.c.source, _events.c.external_id, _events.c.payload, _events.c.message_id)
            .where(_events.c.source.like("%.reply"), _events.c.external_id.like("sha256:%"), _events.c.id > last)
            .order_by(_events.c.id).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        events, messages = [], []
        for row in rows:
            new_id = _time_first_id(row.source, row.external_id, row.payload)
            if new_id is None:
                continue
            events.append({"event_id": row.id, "new_id": new_id})
            if row.message_id is not None:
                messages.append({"message_id": row.message_id, "old_id": row.external_id, "new_id": new_id})
        if events:
            bind.execute(_events.update().where(_events.c.id == sa.bindparam("event_id"))
                         .values(external_id=sa.bindparam("new_id")), events)
        if messages:
            bind.execute(_messages.update().where(_messages.c.id == sa.bindparam("message_id"),
                                                  _messages.c.provider_message_id == sa.bindparam("old_id"))
                         .values(provider_message_id=sa.bindparam("new_id")), messages)
        changed += len(events)
    if changed:
        log.info("gave %d stored replies ids that start with their time", changed)


def downgrade() -> None:
    bind = op.get_bind()
    timed = "%-sha256:%"
    bind.execute(_messages.update().where(_messages.c.provider_message_id.like(timed))
                 .values(provider_message_id=sa.func.substr(_messages.c.provider_message_id, PREFIX_LENGTH + 1)))
    bind.execute(_events.update().where(_events.c.source.like("%.reply"), _events.c.external_id.like(timed))
                 .values(external_id=sa.func.substr(_events.c.external_id, PREFIX_LENGTH + 1)))
