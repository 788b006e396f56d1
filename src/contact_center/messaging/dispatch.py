"""Sending queued messages through their channel's provider, in batches, with retries.

Each step commits on its own: the claim (so no one else sends), the batch reference a request
goes out under (before it goes), then the outcome of each batch. A send whose outcome is unknown
(a timeout, a 5xx, an unreadable answer, a worker that died while its request was out) leaves its
messages `unknown`: they are not sent again before the provider has been asked about them
(messaging/reconcile.py). Exactly-once must not depend on the provider recognising our reference.

Each request first takes from its channel's budget, shared by every worker (messaging/rate_limit.py);
retries wait a jittered step floored by what the provider asked (messaging/backoff.py); every try
is written to the message's attempt history (messaging/attempts.py) with its outcome.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from contact_center.campaigns import service as campaigns
from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider, pause_channel, webhook_urls
from contact_center.contacts import identifiers
from contact_center.contacts import service as contacts
from contact_center.db import DriverCursor, transaction, utcnow
from contact_center.messaging import attempts, backoff, fallback, media, rows, service
from contact_center.messaging.backoff import BACKOFF_SECONDS  # noqa: F401 (where callers have found it)
from contact_center.messaging.models import WAITING, Message
from contact_center.messaging.rate_limit import Limiter, LocalLimiter
from contact_center.metrics import instruments
from contact_center.odoo import chatter
from contact_center.providers.base import OutgoingMessage, ProviderError, RateBudget
from contact_center.settings import Settings
from contact_center.translations import Quantity, Words, say_stored, store
from contact_center.webhooks.service import apply_pending_for

log = logging.getLogger(__name__)

# Kept with a message a stopped worker left claimed; the timeline says it in the reader's language.
REQUEUED = Words("re-queued: the worker sending it stopped before handing it to the provider")

MAX_ATTEMPTS = 5
# A wait for the channel's budget up to this long is slept through; a longer one puts the rest of
# the dispatch back in the queue until then, freeing the worker.
MAX_BUDGET_SLEEP_SECONDS = 2.0
STUCK_QUEUED = timedelta(minutes=2)  # a queued message whose job never ran
# How long one send request can last at most, for a provider that does not say: the sweeper never
# takes back a claim whose request may still be on its way.
LONGEST_REQUEST_SECONDS = 120.0


@dataclass
class Followups:
    """What a dispatch leaves for later: (message id, seconds from now)."""

    retry: list[tuple[int, float]] = field(default_factory=list)  # to send again
    check: list[tuple[int, float]] = field(default_factory=list)  # outcome unknown: ask the provider


def dispatch(session_factory: sessionmaker[Session], settings: Settings, message_ids: list[int],
             limiter: Limiter | None = None) -> Followups:
    """Send what can be claimed of `message_ids`, within each channel's rate limit, counted by
    `limiter` (the runtime's, shared by every worker; None counts this call alone)."""
    with transaction(session_factory) as session:
        by_channel: dict[int, list[int]] = defaultdict(list)
        for message in service.claim_for_dispatch(session, message_ids):
            by_channel[message.channel_id].append(message.id)
    later = Followups()
    limiter = limiter or LocalLimiter()
    for channel_id, ids in by_channel.items():
        _dispatch_channel(session_factory, settings, channel_id, ids, later, limiter)
    return later


def _dispatch_channel(session_factory, settings: Settings, channel_id: int, ids: list[int], later: Followups,
                      limiter: Limiter) -> None:
    with transaction(session_factory) as session:
        channel = session.get(Channel, channel_id)
        if channel.paused_at is not None:
            service.wait_for_channel(session, ids, channel.paused_reason, give_back_attempt=True)  # never sent
            log.info("channel %s is paused (%s): %d message(s) wait", channel.name,
                     say_stored(channel.paused_reason, None), len(ids))
            return
        provider = build_provider(channel, settings)
        status_url = webhook_urls(channel, settings.public_base_url).get("status")
        channel_name = channel.name
        latency = instruments.DISPATCH_LATENCY.labels(channel.kind, channel.provider)
    check_delay = settings.dispatch_check_delay_seconds
    budget: RateBudget | None = getattr(provider, "rate_budget", None)
    try:
        for start in range(0, len(ids), provider.max_batch):
            wait = _wait_for_budget(limiter, channel_id, budget) if budget else 0.0
            if wait:
                _hold(session_factory, ids[start:], _over_budget(budget), wait, channel_name, later)
                return
            batch_reference = rows.new_reference()
            with transaction(session_factory) as session:
                batch = service.hand_over(session, ids[start:start + provider.max_batch], batch_reference)
                outgoing = _outgoing(session, batch, settings)
            if not outgoing:
                continue  # the sweeper took them back meanwhile
            batch_ids = [m.id for m in batch]
            started_at = utcnow()
            try:
                result = provider.send(outgoing, status_webhook_url=status_url, batch_reference=batch_reference)
            except ProviderError as exc:
                if exc.pauses_channel:
                    _pause(session_factory, channel_id, ids[start:], batch_ids, exc, started_at)
                    return
                if exc.pauses_campaign:
                    batch_ids = _pause_campaigns(session_factory, ids[start:], batch_ids, exc, started_at)
                    if not batch_ids:
                        continue
                _after_error(session_factory, batch_ids, exc, channel_name, check_delay, later, started_at)
                rest = ids[start + provider.max_batch:]
                if exc.slows_channel and rest:
                    _slow_down(session_factory, rest, exc, channel_name, later)
                    return
                continue
            accepted_at = utcnow()
            with transaction(session_factory) as session:
                batch = service.apply_send_outcomes(session, batch_ids, result.outcomes, result.request_id,
                                                    accepted_at + timedelta(seconds=check_delay))
                for message in batch:
                    outcome = result.outcomes.get(message.reference)
                    if outcome is not None and outcome.accepted and message.queued_at is not None:
                        latency.observe(max(0.0, (accepted_at - message.queued_at).total_seconds()))
                    if outcome is not None and outcome.recipient_id and message.contact_id is not None:
                        _learn_recipient(session, message.contact_id, outcome.recipient_id)
                    if message.status == "unknown":
                        later.check.append((message.id, check_delay))
                attempts.record(session, batch, started_at)
                apply_pending_for(session, *batch)
                chatter.post_after_commit(session, [m.id for m in batch if m.sent_at is not None and m.contact_id])
            log.info("channel %s: sent batch of %d (request %s, reference %s)", channel_name, len(batch_ids),
                     result.request_id, batch_reference, extra={"channel": channel_name,
                                                                "batch_reference": batch_reference})
    finally:
        provider.close()


def _outgoing(session: Session, batch: list, settings: Settings) -> list[OutgoingMessage]:
    """The request's messages, from hand_over's rows."""
    quoted = {m.in_reply_to_id for m in batch if m.in_reply_to_id is not None}
    provider_ids = dict(session.execute(select(Message.id, Message.provider_message_id)
                                        .where(Message.id.in_(quoted))).all()) if quoted else {}
    return [OutgoingMessage(reference=m.reference, phone=m.phone_e164, body=m.body, content_type=m.content_type,
                            content=m.content, reply_to_provider_id=provider_ids.get(m.in_reply_to_id),
                            attachment=media.outgoing_file(settings, m.content) if m.content_type != "text" else None,
                            user_id=None if m.phone_e164 else m.phone)
            for m in batch]


def _learn_recipient(session: Session, contact_id: int, recipient_id: str) -> None:
    """The id the provider says the number is (WhatsApp's wa_id: the ground truth for Brazil's ninth
    digit) belongs to the contact from now on: the customer's next message finds them by it."""
    driver = DriverCursor(session.connection())
    identifiers.attach(driver, contact_id, {"wa_id": recipient_id}, driver.timestamp(utcnow()))


def _wait_for_budget(limiter: Limiter, channel_id: int, budget: RateBudget) -> float:
    """0 once the channel's budget has taken one more request (after a short sleep if need be);
    otherwise how long the rest of the dispatch should wait instead."""
    slept = 0.0
    while (wait := limiter.acquire(channel_id, 1, budget)) > 0:
        if slept + wait > MAX_BUDGET_SLEEP_SECONDS:
            return wait
        time.sleep(wait)
        slept += wait
    return 0.0


def _over_budget(budget: RateBudget) -> Words:
    per = (Words("second") if budget.per_seconds == 1 else Words("minute") if budget.per_seconds == 60
           else f"{budget.per_seconds:g} s")
    return Words("the channel's send limit ({requests} per {per}, all processes together)",
                 requests=Quantity(budget.requests), per=per)


def _hold(session_factory, ids: list[int], reason: Words | str, delay: float, channel_name: str,
          later: Followups) -> None:
    """Claimed messages not handed over yet wait `delay` seconds, the try given back; each one's
    history says why."""
    with transaction(session_factory) as session:
        started_at = utcnow()
        held = service.hold_back(session, ids, reason, delay)
        attempts.record(session, held, started_at, outcome="held", reason=reason, number_offset=1)
    later.retry += [(message.id, delay) for message in held]
    log.warning("channel %s over its rate limit: %d message(s) wait %.1f s", channel_name, len(held), delay)


def _slow_down(session_factory, ids: list[int], exc: ProviderError, channel_name: str, later: Followups) -> None:
    """The channel is over its provider's rate limit: the rest of this dispatch waits as long as the
    provider asked (at least a first backoff step), instead of being refused one by one."""
    _hold(session_factory, ids, exc.reason, backoff.retry_delay(1, exc.retry_after_seconds), channel_name, later)


def _pause(session_factory, channel_id: int, ids: list[int], batch_ids: list[int], exc: ProviderError,
           started_at) -> None:
    """The provider refuses the account itself: pause the channel for everyone (an alert in the UI),
    and let its messages wait instead of failing them one by one."""
    with transaction(session_factory) as session:
        channel = session.get(Channel, channel_id)
        pause_channel(session, channel, exc.reason)
        waiting = service.wait_for_channel(session, ids, exc.reason, give_back_attempt=True)
        attempts.record(session, [m for m in waiting if m.id in set(batch_ids)], started_at, outcome="held",
                        reason=Words("{reason} (channel paused)", reason=exc.reason), number_offset=1,
                        **attempts.error_details(exc))
    log.error("channel %s paused: %s; %d message(s) wait until an admin fixes it", channel.name, exc.reason, len(ids))


def _pause_campaigns(session_factory, ids: list[int], batch_ids: list[int], exc: ProviderError,
                     started_at) -> list[int]:
    """The provider holds a campaign's content against the number (WhatsApp's spam rate limit):
    the batch's campaigns pause, and their messages of this dispatch go back to them unsent.
    Returns the batch's messages of no campaign, which fail as any refused message does."""
    with transaction(session_factory) as session:
        campaign_ids = set(session.scalars(select(Message.campaign_id).where(Message.id.in_(batch_ids),
                                                                             Message.campaign_id.is_not(None))))
        if not campaign_ids:
            return batch_ids
        campaigns.pause_for_provider(session, campaign_ids, exc.reason)
        theirs = set(session.scalars(select(Message.id).where(Message.id.in_(ids),
                                                              Message.campaign_id.in_(campaign_ids))))
        returned = service.back_to_campaign(session, list(theirs), exc.reason)
        in_batch = set(batch_ids)
        attempts.record(session, [m for m in returned if m.id in in_batch], started_at, outcome="held",
                        reason=Words("{reason} (campaign paused)", reason=exc.reason), number_offset=1,
                        **attempts.error_details(exc))
    return [i for i in batch_ids if i not in theirs]


def _after_error(session_factory, batch_ids: list[int], exc: ProviderError, channel_name: str,
                 check_delay: float, later: Followups, started_at) -> None:
    reason = exc.reason
    check_at = utcnow() + timedelta(seconds=check_delay)
    jitter = backoff.draw()  # one draw for the batch: its messages come back together, in one request
    with transaction(session_factory) as session:
        # Only what is still ours: a delivery report may have overtaken a slow request.
        messages = list(session.scalars(select(Message).where(Message.id.in_(batch_ids),
                                                              Message.status.in_(("sending", "unknown")))))
        for message in messages:
            if exc.outcome_unknown:
                service.mark_unknown(message, Words("{reason} (not sent again before the provider says whether "
                                                    "it has it)", reason=reason), check_at)
                later.check.append((message.id, check_delay))
            elif not exc.retryable:
                service.fail(message, reason)
                message.provider_status_code = getattr(exc, "code", None)
                if exc.opts_out and message.contact_id is not None:
                    contacts.opt_out(session, message.contact_id, exc.opts_out, via="provider", reason=reason)
                later.retry += [(sms_id, 0) for sms_id in
                                fallback.send_automatically(session, message.channel_id, [message.id])]
            else:
                delay = backoff.retry_delay(message.attempts, exc.retry_after_seconds, jitter=lambda: jitter)
                if service.requeue_after_error(message, reason, delay, MAX_ATTEMPTS):
                    later.retry.append((message.id, delay))
            service.announce_message(session, message, "message.status")
        attempts.record(session, messages, started_at, reason=reason, **attempts.error_details(exc))
    what = ("outcome unknown, the provider will be asked" if exc.outcome_unknown
            else "will be retried" if exc.retryable else "failed")
    log.warning("channel %s: batch of %d %s: %s", channel_name, len(batch_ids), what, reason)


@dataclass
class Swept:
    send: list[int]  # queued, and no job will pick them up by itself
    check: list[int]  # unknown, and their time to ask the provider has come


def sweep(session: Session, settings: Settings) -> Swept:
    """Work whose job was lost. A claim abandoned by a dead worker goes back to the queue when
    its request never went out, and becomes `unknown` when it may have (the provider is asked
    first); queued rows no job picked up and unknown rows due for a check are listed for the
    caller to enqueue. A duplicate job is harmless: the claim makes sure."""
    now = utcnow()
    _release_abandoned_claims(session, settings, now)
    send = list(session.scalars(
        select(Message.id).where(
            Message.status == "queued", WAITING,
            or_(and_(Message.next_attempt_at.is_(None), Message.queued_at < now - STUCK_QUEUED),
                Message.next_attempt_at <= now),
        ).order_by(Message.id).limit(10_000)
    ))
    check = list(session.scalars(select(Message.id).where(Message.status == "unknown", WAITING,
                                                          Message.next_attempt_at <= now)
                                 .order_by(Message.id).limit(10_000)))
    return Swept(send, check)


def _release_abandoned_claims(session: Session, settings: Settings, now) -> None:
    timeout = timedelta(seconds=settings.dispatch_claim_timeout_seconds)
    stale = session.execute(select(Message.id, Message.channel_id, Message.claimed_at, Message.batch_reference,
                                   Message.attempts)
                            .where(Message.status == "sending", WAITING, Message.claimed_at < now - timeout)).all()
    if not stale:
        return
    # Never while the request may still be out: a claim lasts at least as long as its provider's
    # slowest possible request, whatever the setting says.
    longest = {channel_id: _longest_request(session, channel_id, settings) for channel_id in {r.channel_id for r in stale}}
    abandoned = [r for r in stale if r.claimed_at < now - max(timeout, timedelta(seconds=longest[r.channel_id]))]
    never_sent = [r.id for r in abandoned if r.batch_reference is None]
    maybe_sent = [r.id for r in abandoned if r.batch_reference is not None]
    if never_sent:
        session.execute(update(Message).where(Message.id.in_(never_sent), Message.status == "sending")
                        .values(status="queued", next_attempt_at=now,
                                status_reason=store(REQUEUED)))
    if maybe_sent:
        reason = store(Words("the worker sending it stopped while its request was out: the provider is asked "
                             "whether it has it before it is sent again"))
        marked = set(session.scalars(update(Message).where(Message.id.in_(maybe_sent), Message.status == "sending")
                                     .values(status="unknown", next_attempt_at=now, status_reason=reason)
                                     .returning(Message.id)))
        attempts.record_rows(session, [
            {"message_id": r.id, "number": r.attempts, "started_at": r.claimed_at, "finished_at": now,
             "outcome": "unknown", "http_status": None, "provider_code": None, "reason": reason,
             "next_attempt_at": now, "batch_reference": r.batch_reference}
            for r in abandoned if r.id in marked])
    log.warning("sweeper: %d claim(s) of a stopped worker: %d re-queued, %d to ask the provider about",
                len(abandoned), len(never_sent), len(maybe_sent))


def _longest_request(session: Session, channel_id: int, settings: Settings) -> float:
    provider = build_provider(session.get(Channel, channel_id), settings)
    try:
        return getattr(provider, "longest_request_seconds", LONGEST_REQUEST_SECONDS)
    finally:
        provider.close()
