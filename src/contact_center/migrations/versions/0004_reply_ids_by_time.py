"""reply ids that start with the reply's time

Replies that Kolmeya sends without an id get one from a hash of their content. Their ids now
start with the reply's UTC time (YYYYMMDDHHMMSS-sha256:...), so the unique indexes over them grow
at their end (providers/kolmeya/webhooks.py, _reply_id). This gives the replies stored before the
same form, in their webhook event and their message, whether a webhook or the reply poller
stored them, so that a replay of one of them is still recognised. Replies whose payload has no
readable time keep the bare hash, as new ones do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 02:40:00
"""

import json
import logging
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op

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

try:  # as the Kolmeya parser read these times when this revision was written
    _BRAZIL = ZoneInfo("America/Sao_Paulo")
except ZoneInfoNotFoundError:  # no tz database: UTC-3 is exact since Brazil dropped daylight saving in 2019
    _BRAZIL = timezone(timedelta(hours=-3))


def _reply_time(payload: str) -> datetime | None:
    """The reply's time in a stored payload, in UTC, read as the parser reads it; None when there is
    none it could read. Webhooks stored the body as Kolmeya sent it (flat `data`, nested
    `reply.received_at`, or the inner object's `received_at`, Brazil time); the reply poller
    stored `{"recovered_by": "poll", "reply": {...}}` with the time already in UTC."""
    try:
        body = json.loads(payload.lstrip("\ufeff"))  # a BOM the webhook's bytes decoding skipped
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    inner = body.get("reply")
    if body.get("recovered_by") == "poll" and isinstance(inner, dict):
        try:
            at = datetime.fromisoformat(inner.get("received_at"))
        except (TypeError, ValueError):
            return None
        return at.astimezone(timezone.utc) if at.tzinfo else None
    if isinstance(inner, dict):
        raw = inner.get("received_at")
    elif "reply" in body and "phone" not in body:
        raw = body.get("received_at")
    else:
        raw = body.get("data")
    return _kolmeya_time(raw) if isinstance(raw, str) else None


def _kolmeya_time(value: str) -> datetime | None:
    """parse_kolmeya_datetime (providers/kolmeya/webhooks.py) as it was at this revision."""
    text = value.strip()
    if len(text) == 19 and text[4] == text[7] == "-" and text[10] == " " and text[13] == text[16] == ":":
        try:
            return datetime.fromisoformat(text).replace(tzinfo=_BRAZIL).astimezone(timezone.utc)
        except ValueError:
            pass
    for form in ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=_BRAZIL).astimezone(timezone.utc)
        except ValueError:
            continue
    return None


def upgrade() -> None:
    bind = op.get_bind()
    last, changed = 0, 0
    while True:
        rows = bind.execute(
            sa.select(_events.c.id, _events.c.external_id, _events.c.payload, _events.c.message_id)
            .where(_events.c.source.like("%.reply"), _events.c.external_id.like("sha256:%"), _events.c.id > last)
            .order_by(_events.c.id).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        events, messages = [], []
        for row in rows:
            at = _reply_time(row.payload)
            if at is None:
                continue
            new_id = f"{at:%Y%m%d%H%M%S}-{row.external_id}"
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
