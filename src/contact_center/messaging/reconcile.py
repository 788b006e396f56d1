"""Messages whose send has an unknown outcome: the provider is asked before anything is sent again.

A timeout, a 5xx, an answer we cannot read, or a worker that died while its request was out leave
messages `unknown`: the provider may have them, and nobody has verified that Kolmeya recognises
our reference on a second send. So each batch goes out under a reference of ours, and here the
provider is asked about that batch:
- it has the message: it was sent, once, and has come as far as the provider reports;
- it has no record of the request, or the request without this message: it is queued again;
- it cannot tell (an error, an answer we cannot read): the message stays unknown, visible as
  such, and is asked about again later, for as long as the provider keeps its records.
A provider that cannot be asked leaves its unknown messages to delivery reports: never resent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider
from contact_center.db import transaction, utcnow
from contact_center.messaging import service
from contact_center.messaging.dispatch import MAX_ATTEMPTS
from contact_center.messaging.models import WAITING, Message
from contact_center.providers.base import ProviderError, StatusUpdate, supports
from contact_center.settings import Settings
from contact_center.translations import Words
from contact_center.webhooks.service import apply_pending_for

log = logging.getLogger(__name__)

ASK_FOR = timedelta(days=7)  # Kolmeya's reports reach back 7 days; after that nobody can tell
LONGEST_WAIT = timedelta(hours=1)  # between two questions, however long it has been unknown
MESSAGES_PER_RUN = 10_000
QUESTION_LEASE = timedelta(minutes=10)

CONFIRMED = Words("the provider confirmed it has this message (asked after its send had an unknown outcome)")
NOT_THERE = Words("the provider has no record of the earlier attempt (asked by its batch reference)")
CANNOT_ASK = Words("the outcome of its send is unknown and this provider cannot be asked about it: it is not sent "
                   "again by itself; a delivery report will settle it")
UNMATCHED = Words("the provider has the request, but its answer does not say which message is which: it is not "
                  "sent again by itself")
GAVE_UP_ASKING = Words("the outcome of its send is unknown, and the provider could not be asked for 7 days: check "
                       "the provider's panel, and send it again if it never arrived")


@dataclass
class CheckReport:
    confirmed: list[int] = field(default_factory=list)  # sent, after all
    resend: list[int] = field(default_factory=list)  # queued again: the caller dispatches them
    waiting: list[tuple[int, float]] = field(default_factory=list)  # still unknown: ask again in (seconds)
    failed: list[int] = field(default_factory=list)  # not there, and out of attempts


def check_unknown(session_factory: sessionmaker[Session], settings: Settings,
                  message_ids: list[int] | None = None) -> CheckReport:
    """Ask the providers about the unknown messages whose time has come (of `message_ids`, or
    any), one question per batch they went out in."""
    now = utcnow()
    with transaction(session_factory) as session:
        # Taken like a send is claimed: of two jobs asking at once (the sweeper's and a scheduled
        # one), one asks. Should this one die, the question is asked again once the lease is over.
        due = [Message.status == "unknown", WAITING, Message.next_attempt_at <= now]
        if message_ids is not None:
            due.append(Message.id.in_(message_ids))
        ids = list(session.scalars(select(Message.id).where(*due).order_by(Message.id).limit(MESSAGES_PER_RUN)))
        taken = session.execute(update(Message).where(Message.id.in_(ids), *due)
                                .values(next_attempt_at=now + QUESTION_LEASE)
                                .returning(Message.channel_id, Message.batch_reference, Message.id)).all()
    batches: dict[tuple[int, str | None], list[int]] = defaultdict(list)
    for channel_id, batch_reference, message_id in sorted(taken, key=lambda row: row[2]):
        batches[(channel_id, batch_reference)].append(message_id)
    report = CheckReport()
    providers: dict[int, object] = {}
    try:
        for (channel_id, batch_reference), ids in batches.items():
            if channel_id not in providers:
                with transaction(session_factory) as session:
                    providers[channel_id] = build_provider(session.get(Channel, channel_id), settings)
            _check_batch(session_factory, settings, providers[channel_id], batch_reference, ids, report)
    finally:
        for provider in providers.values():
            provider.close()
    if report.confirmed or report.resend or report.failed:
        log.warning("sends with an unknown outcome: %d confirmed sent, %d not at the provider (sent again), "
                    "%d failed, %d still unknown", len(report.confirmed), len(report.resend), len(report.failed),
                    len(report.waiting))
    return report


def _check_batch(session_factory, settings: Settings, provider, batch_reference: str | None, ids: list[int],
                 report: CheckReport) -> None:
    found: list[StatusUpdate] | None = None
    problem: Words | None = None
    if batch_reference is None:
        found = None  # never handed over under a reference: nothing can be out there
    elif not supports(provider, "find_batch"):
        problem = CANNOT_ASK
    else:
        try:
            found = provider.find_batch(batch_reference)
        except ProviderError as exc:
            problem = Words("the outcome of its send is unknown, and asking the provider failed: {error}",
                            error=exc.reason)
    with transaction(session_factory) as session:
        messages = list(session.scalars(select(Message).where(Message.id.in_(ids), Message.status == "unknown")))
        if problem is not None:
            for message in messages:
                _still_unknown(message, problem, settings, report, can_ask=problem is not CANNOT_ASK)
            return
        by_reference = {update_.reference: update_ for update_ in found or [] if update_.reference}
        confirmed = []
        for message in messages:
            update_ = by_reference.get(message.reference)
            if update_ is not None:
                service.confirm_sent(session, message, update_, CONFIRMED)
                confirmed.append(message)
                report.confirmed.append(message.id)
            elif found and not by_reference:
                _still_unknown(message, UNMATCHED, settings, report, can_ask=False)
            elif message.attempts >= MAX_ATTEMPTS:
                service.fail(message, Words("gave up after {attempts} attempts: {reason}", attempts=message.attempts,
                                            reason=NOT_THERE), inferred=True)
                service.announce_message(session, message, "message.status")
                report.failed.append(message.id)
            else:
                service.requeue_unsent(message, Words("{reason}; sending it again", reason=NOT_THERE))
                service.announce_message(session, message, "message.status")
                report.resend.append(message.id)
        session.flush()
        apply_pending_for(session, *confirmed)


def _still_unknown(message: Message, reason: Words, settings: Settings, report: CheckReport, *, can_ask: bool) -> None:
    """Leave it unknown; ask again later (less often the longer it has been so, and not past the
    provider's memory), or never when the provider cannot be asked."""
    age = utcnow() - (message.claimed_at or message.created_at)
    if not can_ask:
        service.mark_unknown(message, reason, None)
    elif age > ASK_FOR:
        service.mark_unknown(message, GAVE_UP_ASKING, None)
    else:
        wait = min(max(timedelta(seconds=settings.dispatch_check_delay_seconds), age / 2), LONGEST_WAIT)
        service.mark_unknown(message, reason, utcnow() + wait)
        report.waiting.append((message.id, wait.total_seconds()))
