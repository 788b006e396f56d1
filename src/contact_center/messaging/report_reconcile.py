"""Final states read from the provider's status report, for messages whose delivery callback never came.

Kolmeya's callbacks are not guaranteed (nobody has even published a captured one), so polling is
the source of truth, and its status report (/sms/reports/statuses: up to 30,000 rows a call,
windows of up to 7 days) gives a whole campaign's states in a few calls. The report names no
message, neither Kolmeya's id nor our reference, so a row is matched to one of our messages
only when nothing else could be it:
1. by the request that carried it, when the row names one of ours (its `job` as the request id
   Kolmeya answered the send with, or its `lote` as our batch reference: an assumption, see
   providers/kolmeya/provider.py), and the number: one message of ours to that number in it;
2. else by the number and the minute it went: one message of ours to that number sent in the
   minutes around it (EARLIER, LATER), and no other row that could be it;
3. rows that could be either of two messages of ours are never guessed between (unless every
   one of them says the same): those messages' requests are asked message by message
   (`request_statuses`, by the provider's request id), at most ASK_PER_RUN a run, or they are left.
What is matched goes through the forward-only rule of every callback (a report saying "enviado"
for a delivered message changes nothing), a thousand messages a statement, and the message's
reason says the report is where its state came from.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contact_center import phones
from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider, provider_spec
from contact_center.db import chunks, reading, transaction, utcnow
from contact_center.messaging.models import WAITING, Message
from contact_center.messaging.service import STATUS_FROM_PROVIDER
from contact_center.providers.base import ProviderError, ReportedStatus, StatusUpdate, supports
from contact_center.settings import Settings
from contact_center.translations import Words
from contact_center.webhooks.service import apply_statuses

log = logging.getLogger(__name__)

REPORT_REACH = timedelta(days=7)  # how far back the report goes
NOT_FINAL = ("sent",)  # handed over, no final state yet
# Around our send time, where the provider's "sent at" may fall: clocks differ and minutes are cut
# (EARLIER); the provider queues a large request before its carrier takes it (LATER).
EARLIER = timedelta(minutes=2)
LATER = timedelta(minutes=30)
WINDOW_GAP = timedelta(hours=1)  # sends further apart than this are read in separate windows
ASK_PER_RUN = 20  # requests asked about message by message, for rows that cannot be told apart
APPLY_CHUNK = 1000


@dataclass
class ReconcileReport:
    channel: str
    rows: int = 0  # read from the report
    matched: int = 0  # rows matched to exactly one message of ours still without a final state
    changes: Counter = field(default_factory=Counter)  # (from, to) -> messages moved
    unchanged: int = 0  # matched, nothing to move forward (still "enviado", or it would go backwards)
    ambiguous: int = 0  # our messages that rows could not tell apart
    asked: int = 0  # requests asked about message by message, for those
    left: int = 0  # ambiguous messages left for a later run
    unmatched: int = 0  # rows that are none of our waiting messages (final already, or not ours)
    unknown_status: int = 0  # rows whose status words we do not know: left alone
    skipped: str | None = None  # why nothing was read

    @property
    def changed(self) -> int:
        return sum(self.changes.values())


@dataclass
class _Ours:
    id: int
    reference: str
    provider_message_id: str | None
    provider_request_id: str | None
    batch_reference: str | None
    key: str  # phone match key
    sent_at: datetime
    status: str
    target: bool  # still waiting for a final state, and among what was asked for


def reconcile_channel(session_factory: sessionmaker[Session], settings: Settings, channel_id: int, *,
                      since: datetime | None = None, campaign_id: int | None = None,
                      provider=None) -> ReconcileReport:
    """Read the status report for the channel's messages sent (since `since`, of `campaign_id`)
    without a final state, and move them forward by it. Commits as it goes. A report that cannot
    be read raises ProviderError before anything is changed."""
    own = provider is None
    with transaction(session_factory) as session:
        channel = session.get(Channel, channel_id)
        report = ReconcileReport(channel=channel.name)
        label = provider_spec(channel.provider).label
        provider = provider or build_provider(channel, settings)
    try:
        if not supports(provider, "status_report"):
            report.skipped = f"{label} has no status report to read"
            return report
        since = max(since or utcnow() - REPORT_REACH, utcnow() - REPORT_REACH)
        with reading(session_factory) as session:
            waiting = _waiting(session, channel_id, since, campaign_id)
        if not waiting:
            return report
        windows = _windows(waiting)
        rows = [row for start, end in windows for row in provider.status_report(start, end)]
        report.rows = len(rows)
        with reading(session_factory) as session:
            ours = _ours(session, channel_id, windows, set(waiting))
        matched, ambiguous = _match(rows, ours, report)
        source = Words("read from {provider}'s status report: no callback brought it", provider=label)
        updates = [_update(message, row, source) for message, row in matched]
        _apply(session_factory, channel_id, updates, {m.id: m for m, _ in matched}, report)
        _ask(session_factory, provider, channel_id, ambiguous, label, report)
    finally:
        if own:
            provider.close()
    if report.changed or report.ambiguous:
        log.warning("channel %s: %d message(s) moved by the status report (%s); %d could not be told apart "
                    "(%d request(s) asked, %d left)", report.channel, report.changed,
                    ", ".join(f"{a} → {b}: {n}" for (a, b), n in sorted(report.changes.items())) or "none",
                    report.ambiguous, report.asked, report.left)
    return report


def reconcile_campaign(session_factory: sessionmaker[Session], settings: Settings, campaign_id: int) -> ReconcileReport:
    """The final states of a campaign's messages, from the report (for when it ends: the periodic
    run goes on reading them for as long as some have none)."""
    from contact_center.campaigns.models import Campaign

    with session_factory() as session:
        channel_id = session.scalar(select(Campaign.channel_id).where(Campaign.id == campaign_id))
    if channel_id is None:
        raise LookupError(f"no campaign {campaign_id}")
    return reconcile_channel(session_factory, settings, channel_id, campaign_id=campaign_id)


def reconcile_all(session_factory: sessionmaker[Session], settings: Settings) -> list[ReconcileReport]:
    """The periodic run: every active channel with messages of the last 7 days still waiting for
    a final state. A channel whose report cannot be read is logged and left for the next run."""
    with session_factory() as session:
        ids = list(session.scalars(
            select(Message.channel_id).distinct().join(Channel, Channel.id == Message.channel_id)
            .where(Channel.active.is_(True), Message.status.in_(NOT_FINAL), WAITING, Message.direction == "out",
                   Message.sent_at >= utcnow() - REPORT_REACH)))
    reports = []
    for channel_id in sorted(ids):
        try:
            reports.append(reconcile_channel(session_factory, settings, channel_id))
        except ProviderError as exc:
            log.warning("channel %d: its status report could not be read, nothing changed: %s", channel_id, exc)
    return reports


def _waiting(session: Session, channel_id: int, since: datetime, campaign_id: int | None) -> dict[int, datetime]:
    """Our messages still without a final state: id -> when we handed them over."""
    query = select(Message.id, Message.sent_at).where(
        Message.channel_id == channel_id, Message.direction == "out", Message.status.in_(NOT_FINAL), WAITING,
        Message.sent_at >= since)
    if campaign_id is not None:
        query = query.where(Message.campaign_id == campaign_id)
    return dict(session.execute(query).all())


def _windows(waiting: dict[int, datetime]) -> list[tuple[datetime, datetime]]:
    """The stretches of time to read: around each run of sends, up to now."""
    now = utcnow()
    times = sorted(waiting.values())
    windows = [[times[0], times[0]]]
    for moment in times[1:]:
        if moment - windows[-1][1] > WINDOW_GAP:
            windows.append([moment, moment])
        else:
            windows[-1][1] = moment
    return [(first - EARLIER, min(last + LATER, now)) for first, last in windows]


def _ours(session: Session, channel_id: int, windows, targets: set[int]) -> list[_Ours]:
    """Every message of ours a row of these windows could be, whatever its state: one already
    delivered still makes its neighbour ambiguous."""
    found = []
    for start, end in windows:
        rows = session.execute(
            select(Message.id, Message.reference, Message.provider_message_id, Message.provider_request_id,
                   Message.batch_reference, Message.phone_e164, Message.sent_at, Message.status)
            .where(Message.channel_id == channel_id, Message.direction == "out",
                   Message.sent_at.between(start - LATER, end + EARLIER))).all()
        for row in rows:
            try:
                key = phones.match_key(row.phone_e164)
            except phones.PhoneNumberError:
                continue  # not a number a report could list
            found.append(_Ours(row.id, row.reference, row.provider_message_id, row.provider_request_id,
                               row.batch_reference, key, row.sent_at, row.status, row.id in targets))
    return list({message.id: message for message in found}.values())


def _match(rows: list[ReportedStatus], ours: list[_Ours], report: ReconcileReport):
    """(message, row) pairs, each certain; and the waiting messages rows could not tell apart."""
    by_request: dict[str, dict[str, list[_Ours]]] = defaultdict(lambda: defaultdict(list))
    by_key: dict[str, list[_Ours]] = defaultdict(list)
    for message in ours:
        for request in {message.provider_request_id, message.batch_reference} - {None}:
            by_request[request][message.key].append(message)
        by_key[message.key].append(message)

    # Each row, with the messages of ours it could be.
    could_be: list[tuple[ReportedStatus, tuple[_Ours, ...]]] = []
    for row in rows:
        try:
            key = phones.match_key(row.phone)
        except phones.PhoneNumberError:
            report.unmatched += 1
            continue
        request = next((by_request[r] for r in (row.request_id, row.batch_reference) if r in by_request), None)
        if request is not None:
            candidates = tuple(request.get(key, ()))
        elif row.sent_at is not None:
            candidates = tuple(m for m in by_key.get(key, ())
                               if m.sent_at - EARLIER <= row.sent_at <= m.sent_at + LATER)
        else:
            candidates = ()
        if not any(m.target for m in candidates):
            report.unmatched += 1
            continue
        could_be.append((row, candidates))

    # Rows that could be the same messages are decided together.
    groups: dict[tuple[int, ...], list[ReportedStatus]] = defaultdict(list)
    for row, candidates in could_be:
        groups[tuple(sorted(m.id for m in candidates))].append(row)
    claims = Counter(message_id for ids in groups for message_id in ids)
    matched: list[tuple[_Ours, ReportedStatus]] = []
    ambiguous: dict[int, _Ours] = {}
    messages = {m.id: m for m in ours}
    for ids, group_rows in groups.items():
        group = [messages[i] for i in ids]
        overlapping = any(claims[i] > 1 for i in ids)  # another group's rows could be these too
        same_word = len({(r.state, r.code) for r in group_rows}) == 1
        if not overlapping and len(group_rows) == len(group) and (len(group) == 1 or same_word):
            # One row for one message, or as many rows as messages all saying the same: no guess.
            matched += [(m, r) for m, r in zip(group, group_rows) if m.target]
        else:
            ambiguous.update((m.id, m) for m in group if m.target)
    matched = [(m, r) for m, r in matched if m.id not in ambiguous]
    report.unknown_status += sum(1 for _, r in matched if r.state is None)
    matched = [(m, r) for m, r in matched if r.state is not None]
    report.matched = len(matched)
    report.ambiguous = len(ambiguous)
    return matched, list(ambiguous.values())


def _update(message: _Ours, row: ReportedStatus, source: Words) -> StatusUpdate:
    return StatusUpdate(external_id=f"report:{message.id}:{row.code}", provider_message_id=message.provider_message_id,
                        reference=message.reference, state=row.state, code=row.code, text=row.text, source=source)


def _apply(session_factory, channel_id: int, updates: list[StatusUpdate], before: dict[int, _Ours],
           report: ReconcileReport) -> None:
    """A thousand statuses a transaction: a handful of statements each, however many there are."""
    for chunk in chunks(updates, APPLY_CHUNK):
        with transaction(session_factory) as session:
            outcomes = apply_statuses(session, channel_id, chunk)
        for update_, (outcome, message_id) in zip(chunk, outcomes):
            if outcome == "applied" and message_id is not None:
                previous = before[message_id].status if message_id in before else "?"
                report.changes[(previous, STATUS_FROM_PROVIDER[update_.state])] += 1
            else:
                report.unchanged += 1


def _ask(session_factory, provider, channel_id: int, ambiguous: list[_Ours], label: str,
         report: ReconcileReport) -> None:
    """Messages the report could not tell apart: their requests' statuses, message by message."""
    requests = sorted({m.provider_request_id for m in ambiguous if m.provider_request_id})
    if not supports(provider, "request_statuses"):
        requests = []
    asked = set(requests[:ASK_PER_RUN])
    report.left = sum(1 for m in ambiguous if m.provider_request_id not in asked)
    source = Words("read from {provider}'s request status, the status report being unable to tell it from another",
                   provider=label)
    by_id = {m.id: m for m in ambiguous}
    for request_id in sorted(asked):
        try:
            statuses = provider.request_statuses(request_id)
        except ProviderError as exc:
            log.warning("channel %d: asking about request %s failed, its messages wait for a later run: %s",
                        channel_id, request_id, exc)
            report.left += sum(1 for m in ambiguous if m.provider_request_id == request_id)
            continue
        report.asked += 1
        wanted = {m.reference for m in ambiguous if m.provider_request_id == request_id}
        wanted_ids = {m.provider_message_id for m in ambiguous if m.provider_request_id == request_id} - {None}
        updates = [replace(s, source=source) for s in statuses
                   if s.reference in wanted or s.provider_message_id in wanted_ids]
        _apply(session_factory, channel_id, updates, by_id, report)
