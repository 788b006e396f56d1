"""Sending queued messages through their channel's provider, in batches, with retries.

Each step commits on its own: the claim (so no one else sends), then the outcome of each batch
(so a crash mid-way loses at most the batch in flight, which the sweeper hands back and the
provider recognises as a duplicate by our reference).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider, webhook_urls
from contact_center.db import transaction, utcnow
from contact_center.messaging import service
from contact_center.messaging.models import Message
from contact_center.providers.base import OutgoingSms, ProviderError
from contact_center.settings import Settings
from contact_center.webhooks.service import apply_pending_for

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = (5, 30, 120, 600)  # after attempts 1, 2, 3, 4
STUCK_SENDING = timedelta(minutes=5)  # a claim older than this lost its worker
STUCK_QUEUED = timedelta(minutes=2)  # a queued message whose job never ran


def dispatch(session_factory: sessionmaker[Session], settings: Settings, message_ids: list[int]) -> list[tuple[int, float]]:
    """Send what can be claimed of `message_ids`. Returns (id, seconds) of those to try again later."""
    with transaction(session_factory) as session:
        claimed = service.claim_for_dispatch(session, message_ids)
        by_channel: dict[int, list[int]] = defaultdict(list)
        for message in claimed:
            by_channel[message.channel_id].append(message.id)
    retry_later: list[tuple[int, float]] = []
    for channel_id, ids in by_channel.items():
        retry_later += _dispatch_channel(session_factory, settings, channel_id, ids)
    return retry_later


def _dispatch_channel(session_factory, settings: Settings, channel_id: int, ids: list[int]) -> list[tuple[int, float]]:
    with transaction(session_factory) as session:
        channel = session.get(Channel, channel_id)
        provider = build_provider(channel, settings)
        status_url = webhook_urls(channel, settings.public_base_url).get("status")
        channel_name = channel.name
    retry_later: list[tuple[int, float]] = []
    try:
        for start in range(0, len(ids), provider.max_batch):
            batch_ids = ids[start:start + provider.max_batch]
            with transaction(session_factory) as session:
                batch = list(session.scalars(select(Message).where(Message.id.in_(batch_ids))))
                outgoing = [OutgoingSms(reference=m.reference, phone=m.phone_e164, body=m.body) for m in batch]
            try:
                result = provider.send(outgoing, status_webhook_url=status_url)
            except ProviderError as exc:
                retry_later += _after_error(session_factory, batch_ids, exc, channel_name)
                continue
            with transaction(session_factory) as session:
                batch = list(session.scalars(select(Message).where(Message.id.in_(batch_ids))))
                for message in batch:
                    outcome = result.outcomes.get(message.reference)
                    if outcome is None:
                        service.fail(message, "the provider's answer did not mention this message")
                        continue
                    service.apply_send_outcome(session, message, outcome, result.request_id)
                session.flush()
                apply_pending_for(session, *batch)
            log.info("channel %s: sent batch of %d (request %s)", channel_name, len(batch_ids), result.request_id)
    finally:
        provider.close()
    return retry_later


def _after_error(session_factory, batch_ids: list[int], exc: ProviderError, channel_name: str) -> list[tuple[int, float]]:
    reason = str(exc)
    requeued: list[tuple[int, float]] = []
    with transaction(session_factory) as session:
        for message in session.scalars(select(Message).where(Message.id.in_(batch_ids))):
            if not exc.retryable:
                service.fail(message, reason)
            else:
                delay = exc.retry_after_seconds or BACKOFF_SECONDS[min(message.attempts, len(BACKOFF_SECONDS)) - 1]
                if service.requeue_after_error(message, reason, delay, MAX_ATTEMPTS):
                    requeued.append((message.id, delay))
            service.announce_message(session, message, "message.status")
    log.warning("channel %s: batch of %d %s: %s", channel_name, len(batch_ids),
                "will be retried" if exc.retryable else "failed", reason)
    return requeued


def sweep(session: Session) -> list[int]:
    """Ids of messages whose job was lost: claims abandoned by a dead worker, and queued rows no job
    picked up. The caller enqueues them again; the claim makes a duplicate job harmless."""
    now = utcnow()
    session.execute(
        update(Message).where(Message.status == "sending", Message.claimed_at < now - STUCK_SENDING)
        .values(status="queued", status_reason="re-queued: the worker sending it stopped")
    )
    return list(session.scalars(
        select(Message.id).where(
            Message.status == "queued",
            or_(and_(Message.next_attempt_at.is_(None), Message.queued_at < now - STUCK_QUEUED),
                Message.next_attempt_at <= now),
        ).order_by(Message.id).limit(10_000)
    ))
