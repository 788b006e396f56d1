"""Recovering what webhooks missed: replies from the provider's reply list, statuses of messages
stuck in `sent`. Everything goes through the same idempotent path as the webhooks."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contact_center import phones
from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider, provider_spec
from contact_center.db import transaction, utcnow
from contact_center.messaging import service
from contact_center.messaging.models import WAITING, Message
from contact_center.providers.base import ProviderError, supports
from contact_center.settings import Settings
from contact_center.webhooks.service import IngestResult, record_reply

log = logging.getLogger(__name__)

STATUS_CHECK_AFTER = timedelta(minutes=30)
STATUS_CHECKS_PER_RUN = 200
REPLY_WINDOW_HOURS = 24
# A reply this recent may still be on its way by webhook, and a flat webhook carries no id to
# recognise a reply the poller stored first: it would be stored twice. So the poller leaves
# recent replies to their webhook and recovers them on a later run if none came.
RECOVER_AFTER = timedelta(minutes=10)


@dataclass
class PollReport:
    replies_seen: int = 0
    replies_recovered: int = 0
    replies_waiting: int = 0  # too recent to recover yet (RECOVER_AFTER)
    statuses_checked: int = 0
    statuses_recovered: int = 0
    errors: int = 0


def poll_channel(session_factory: sessionmaker[Session], settings: Settings, channel_id: int) -> PollReport:
    report = PollReport()
    with transaction(session_factory) as session:
        channel = session.get(Channel, channel_id)
        provider = build_provider(channel, settings)
        source = f"{provider_spec(channel.provider).name}.reply"
    try:
        cutoff = utcnow() - RECOVER_AFTER
        replies = provider.recent_replies(REPLY_WINDOW_HOURS) if supports(provider, "recent_replies") else ()
        for reply in replies:
            report.replies_seen += 1
            if reply.received_at is not None and reply.received_at > cutoff:
                report.replies_waiting += 1
                continue
            with transaction(session_factory) as session:
                channel = session.get(Channel, channel_id)
                if _already_have(session, channel_id, reply):
                    continue
                payload = json.dumps({"recovered_by": "poll", "reply": asdict(reply)}, default=str)
                result = IngestResult()
                record_reply(session, source, channel, reply, payload, result, origin="poll")
                report.replies_recovered += result.count("applied")
        if supports(provider, "message_status"):
            _check_stuck_statuses(session_factory, provider, channel_id, report)
    except ProviderError as exc:
        report.errors += 1
        log.warning("polling channel %d stopped: %s", channel_id, exc)
    finally:
        provider.close()
    if report.replies_recovered or report.statuses_recovered:
        log.warning("channel %d: recovered %d repl(ies) and %d status(es) that no webhook delivered",
                    channel_id, report.replies_recovered, report.statuses_recovered)
    return report


def _already_have(session: Session, channel_id: int, reply) -> bool:
    """The webhook may have delivered this reply under another id (flat payloads carry none): the
    same text from the same number around the same time."""
    if reply.received_at is None:
        return False
    try:
        e164 = phones.identify(reply.phone).e164
    except phones.PhoneNumberError:
        return False  # record_replies refuses it, with the reason
    window = timedelta(minutes=2)
    return session.scalar(
        select(Message.id).where(
            Message.channel_id == channel_id, Message.direction == "in", Message.phone_e164 == e164,
            Message.body == reply.text,
            Message.received_at.between(reply.received_at - window, reply.received_at + window),
        ).limit(1)
    ) is not None


def _check_stuck_statuses(session_factory, provider, channel_id: int, report: PollReport) -> None:
    with transaction(session_factory) as session:
        stuck = session.execute(
            select(Message.id, Message.provider_message_id).where(
                Message.channel_id == channel_id, Message.status == "sent", WAITING,
                Message.provider_message_id.is_not(None), Message.sent_at < utcnow() - STATUS_CHECK_AFTER,
            ).order_by(Message.sent_at).limit(STATUS_CHECKS_PER_RUN)
        ).all()
    for _message_id, provider_id in stuck:
        update_ = provider.message_status(provider_id)
        report.statuses_checked += 1
        with transaction(session_factory) as session:
            report.statuses_recovered += service.apply_status(session, channel_id, update_).outcome == "applied"


def poll_all_channels(session_factory: sessionmaker[Session], settings: Settings) -> list[PollReport]:
    with transaction(session_factory) as session:
        ids = list(session.scalars(select(Channel.id).where(Channel.active.is_(True))))
    return [poll_channel(session_factory, settings, channel_id) for channel_id in ids]
