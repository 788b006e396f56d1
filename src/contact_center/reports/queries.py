"""The reports' figures. Each function reads one report for a period and its filters in a few
grouped queries, from the daily roll-ups and conversation times the database keeps by trigger
(reports/models.py, migration 0013) and through that migration's indexes (bench/reports.py
measures them on a million messages).

Days are Brasília days: the roll-ups count by them, and what is read from timestamps is grouped
per UTC hour in the database and put in its Brasília day here with zoneinfo.

Definitions (the page's help text says the same):
- A message's final state is its status now. Delivery rate = delivered (read included) ÷
  (delivered + sent + failed): what reached the provider and got an answer or none; messages not
  yet sent, blocked by an opt-out or cancelled are not in it.
- A reply to a campaign is a customer's message tied to the campaign message it answers (Kolmeya
  replies carry it; WhatsApp replies that quote it). Reply rate = campaign messages with at least
  one reply ÷ campaign messages that reached the provider (sent, delivered or read).
- First response time: from the conversation's first message from the customer (its opening when
  it has none) to the first message an operator wrote in it after that. Resolution time: from
  opening to the first close after it. Both over the conversations opened in the period; median
  and p90 by nearest rank; per operator by who answered first and who closed.
- Conversations handled by an operator: those they wrote at least one message in, in the period.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from itertools import chain

from sqlalchemy import Select, func, literal, select, text
from sqlalchemy.orm import Session

from contact_center.audit.models import AuditEntry
from contact_center.auth.models import User
from contact_center.campaigns.models import Campaign
from contact_center.channels.models import Channel
from contact_center.db import DriverCursor
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.messaging.models import Message
from contact_center.reports import models
from contact_center.reports.models import ConversationTimes, HandledDay, MessageDay, ReplyDay
from contact_center.reports.period import ZONE, Filters
from contact_center.reports.tables import Column, Section
from contact_center.templates.models import Template

NAMES = ("messages", "replies", "conversations", "opt_outs")
# A message's status → the state the reports draw (what got furthest first).
STATES = {"read": ("read", "played"), "delivered": ("delivered",), "sent": ("sent",),
          "pending": ("scheduled", "queued", "sending", "unknown"), "failed": ("failed", "rejected", "expired"),
          "blocked": ("blocked",), "cancelled": ("cancelled",)}
STATE_OF = {status: state for state, statuses in STATES.items() for status in statuses}
REACHED = ("sent", "delivered", "read", "played")
TOP_REASONS = 10
OPT_OUT_ACTIONS = ("contact.opt_out_sms", "contact.opt_out_whatsapp", "contact.opt_out_marketing")
OPT_OUT_REASONS = ("keyword", "provider", "marketing_stop", "operator")
# As written in the partial index: SQLite uses one only when the query's WHERE states its condition.
FAILED = text(models.FAILED)


def _local_day(moment: datetime) -> date:
    return moment.astimezone(ZONE).date()


def _names(session: Session, model, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def nearest_rank(ordered: list[float], share: float) -> float | None:
    """The percentile by nearest rank of values in order: the smallest value with at least `share`
    of them at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# --- messages --------------------------------------------------------------------------------------

def _days(query: Select, f: Filters, table=MessageDay) -> Select:
    """A roll-up's rows for the period and the filters (0 is no campaign / no author there)."""
    query = query.where(table.day >= f.start, table.day <= f.end)
    if f.channel_id is not None:
        query = query.where(table.channel_id == f.channel_id)
    if f.campaign_id is not None:
        query = query.where(table.campaign_id == f.campaign_id)
    return query


def messages_report(session: Session, f: Filters) -> list[Section]:
    """Messages we sent (or tried to) in the period: per day, channel and final state; delivery
    rate per channel and per campaign; the most frequent failure reasons with examples."""
    states = list(STATES)

    def rolled_up(*columns):
        query = _days(select(*columns, MessageDay.status, func.sum(MessageDay.messages)), f)
        if f.operator_id is not None:
            query = query.where(MessageDay.author_id == f.operator_id)
        return session.execute(query.group_by(*columns, MessageDay.status))

    per_day: dict[tuple[date, int], Counter] = defaultdict(Counter)
    for day, channel_id, status, count in rolled_up(MessageDay.day, MessageDay.channel_id):
        per_day[(day, channel_id)][STATE_OF.get(status, "pending")] += count
    channel_ids = sorted({channel_id for (_, channel_id), counts in per_day.items() if any(counts.values())})
    channels = _names(session, Channel, channel_ids)
    daily = Section("messages_per_day", [Column("day", "day"), Column("channel", "text"),
                                         *(Column(f"state_{s}") for s in states), Column("total")],
                    chart="stacked", labels=(0, 1), series=tuple(range(2, 2 + len(states))))
    by_channel: dict[int, Counter] = defaultdict(Counter)
    for day in f.days():
        for channel_id in channel_ids:
            counts = per_day.get((day, channel_id), Counter())
            by_channel[channel_id].update(counts)
            daily.rows.append([day, channels.get(channel_id, f"#{channel_id}"), *(counts[s] for s in states),
                               sum(counts.values())])

    rate_columns = [Column("sent_total"), Column("state_delivered"), Column("state_failed"),
                    Column("delivery_rate", "rate")]
    per_channel = Section("delivery_per_channel", [Column("channel", "text"), *rate_columns], chart="bars",
                          series=(4,))
    for channel_id in channel_ids:
        per_channel.rows.append([channels.get(channel_id, f"#{channel_id}"), *_delivery(by_channel[channel_id])])

    by_campaign: dict[int, Counter] = defaultdict(Counter)
    for campaign_id, status, count in rolled_up(MessageDay.campaign_id):
        if campaign_id and count:
            by_campaign[campaign_id][STATE_OF.get(status, "pending")] += count
    campaigns = _names(session, Campaign, by_campaign)
    per_campaign = Section("delivery_per_campaign", [Column("campaign", "text"), *rate_columns], chart="bars",
                           series=(4,))
    for campaign_id in sorted(by_campaign, key=lambda i: campaigns.get(i, "").lower()):
        per_campaign.rows.append([campaigns.get(campaign_id, f"#{campaign_id}"), *_delivery(by_campaign[campaign_id])])

    return [daily, per_channel, per_campaign, _failure_reasons(session, f)]


def _delivery(counts: Counter) -> list:
    delivered = counts["delivered"] + counts["read"]
    answered = delivered + counts["sent"] + counts["failed"]
    return [answered, delivered, counts["failed"], _rate(delivered, answered)]


def _failure_reasons(session: Session, f: Filters) -> Section:
    """Read from the failed messages' own index (reports/models.py), whose condition is this literal."""
    section = Section("failure_reasons", [Column("reason", "reason"), Column("status", "label"), Column("messages"),
                                          Column("examples", "text")], chart="bars", series=(2,))
    query = (select(Message.status, Message.status_reason, func.count(), func.min(Message.id), func.max(Message.id))
             .where(FAILED, Message.created_at >= f.since, Message.created_at < f.until))
    if f.channel_id is not None:
        query = query.where(Message.channel_id == f.channel_id)
    if f.campaign_id is not None:
        query = query.where(Message.campaign_id == f.campaign_id)
    if f.operator_id is not None:
        query = query.where(Message.author_id == f.operator_id)
    found = session.execute(query.group_by(Message.status, Message.status_reason)
                            .order_by(func.count().desc(), Message.status).limit(TOP_REASONS)).all()
    example_ids = {i for row in found for i in row[3:5]}
    examples = {row.id: row for row in session.execute(
        select(Message.id, Message.phone_e164, Message.created_at).where(Message.id.in_(example_ids)))} \
        if example_ids else {}
    for status, reason, count, first, last in found:
        shown = [examples[i] for i in sorted({last, first}, reverse=True) if i in examples]
        text = "; ".join(f"#{e.id} {e.phone_e164} {e.created_at.astimezone(ZONE):%d/%m %H:%M}" for e in shown)
        section.rows.append([reason or "—", f"status_{status}", count, text])
    return section


# --- replies ---------------------------------------------------------------------------------------

def replies_report(session: Session, f: Filters) -> list[Section]:
    """Campaign messages sent in the period that got a reply, per campaign and per template."""
    reached_query = _days(select(MessageDay.campaign_id, func.sum(MessageDay.messages)), f).where(
        MessageDay.campaign_id != 0, MessageDay.status.in_(REACHED)).group_by(MessageDay.campaign_id)
    replied_query = _days(select(ReplyDay.campaign_id, func.sum(ReplyDay.replied), func.sum(ReplyDay.replies)),
                           f, ReplyDay).group_by(ReplyDay.campaign_id)
    if f.operator_id is not None:  # the campaigns they created, not messages they wrote
        created = select(Campaign.id).where(Campaign.created_by_id == f.operator_id)
        reached_query = reached_query.where(MessageDay.campaign_id.in_(created))
        replied_query = replied_query.where(ReplyDay.campaign_id.in_(created))
    reached = {campaign_id: count for campaign_id, count in session.execute(reached_query) if count}
    replied = {campaign_id: (messages, replies) for campaign_id, messages, replies in session.execute(replied_query)}

    ids = set(reached) | set(replied)
    campaigns = {c.id: c for c in session.execute(select(Campaign.id, Campaign.name, Campaign.template_id)
                                                  .where(Campaign.id.in_(ids)))} if ids else {}
    columns = [Column("reached"), Column("replied_messages"), Column("replies"), Column("reply_rate", "rate")]
    per_campaign = Section("replies_per_campaign", [Column("campaign", "text"), *columns], chart="bars",
                           series=(4,))
    per_template: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for campaign_id in sorted(ids, key=lambda i: campaigns[i].name.lower() if i in campaigns else ""):
        sent = reached.get(campaign_id, 0)
        messages, replies = replied.get(campaign_id, (0, 0))
        row = campaigns.get(campaign_id)
        per_campaign.rows.append([row.name if row else f"#{campaign_id}", sent, messages, replies,
                                  _rate(messages, sent)])
        totals = per_template[row.template_id if row else None]
        for n, value in enumerate((sent, messages, replies)):
            totals[n] += value
    templates = _names(session, Template, per_template)
    by_template = Section("replies_per_template", [Column("template", "text", empty="no_template"), *columns],
                          chart="bars", series=(4,))
    for template_id in sorted(per_template, key=lambda i: (i is None, templates.get(i, "").lower())):
        sent, messages, replies = per_template[template_id]
        name = templates.get(template_id, f"#{template_id}") if template_id is not None else None
        by_template.rows.append([name, sent, messages, replies, _rate(messages, sent)])
    return [per_campaign, by_template]


# --- conversations ---------------------------------------------------------------------------------

def _per_hour(session: Session, column):
    """A timestamp's UTC hour as 'YYYY-MM-DD HH' text, for grouping on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.substr(column, 1, 13)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC


def _day_of_hour(hour: str) -> date:
    """The Brasília day of a UTC hour written 'YYYY-MM-DD HH' (sliced: strptime costs more than the
    query for a 90-day report's hours)."""
    return _local_day(datetime(int(hour[:4]), int(hour[5:7]), int(hour[8:10]), int(hour[11:13]), tzinfo=UTC))


def _days_of_hours(rows) -> Counter:
    """(hour text, count) rows summed into Brasília days."""
    days: Counter = Counter()
    for hour, count in rows:
        days[_day_of_hour(hour)] += count
    return days


def _times(session: Session, f: Filters) -> list[tuple]:
    """(responder, seconds to respond, closer, seconds to resolve) of each conversation opened in
    the period: tens of thousands of rows a month, read from their covering index at the driver
    level, where SQLAlchemy's work per row would cost more than the database's."""
    driver = DriverCursor(session.connection())
    sql = ("SELECT responder_id, response_seconds, closer_id, resolution_seconds FROM report_conversations "
           "WHERE opened_at >= ? AND opened_at < ?")
    params: list = [driver.timestamp(f.since), driver.timestamp(f.until)]
    if f.channel_id is not None:
        sql += " AND channel_id = ?"
        params.append(f.channel_id)
    if f.campaign_id is not None:
        sql += " AND conversation_id IN (SELECT conversation_id FROM messages WHERE campaign_id = ?)"
        params.append(f.campaign_id)
    if f.operator_id is not None:
        sql += " AND (responder_id = ? OR closer_id = ?)"
        params += [f.operator_id, f.operator_id]
    return driver.rows(sql, params)


def _times_by_operator(session: Session, f: Filters) -> tuple[dict, dict]:
    """Seconds to respond by responder and seconds to resolve by closer, each list in order, and
    everyone's under None: the merge of theirs (sorting sorted runs is a merge, cheaper than
    sorting the whole period twice). With an operator, theirs only."""
    response: dict[int | None, list[int]] = defaultdict(list)
    resolution: dict[int | None, list[int]] = defaultdict(list)
    for responder_id, answered_in, closer_id, closed_in in _times(session, f):
        if answered_in is not None:
            response[responder_id].append(answered_in)
        if closed_in is not None:
            resolution[closer_id].append(closed_in)
    for times in (response, resolution):
        if f.operator_id is not None:
            theirs = times.get(f.operator_id, [])
            times.clear()
            times[f.operator_id] = theirs
        for values in times.values():
            values.sort()
        times[None] = sorted(chain.from_iterable(times.values()))
    return response, resolution


def conversations_report(session: Session, f: Filters) -> list[Section]:
    """Conversations opened and closed per day, the backlog now, first-response and resolution
    times (median, p90) overall and per operator, and conversations handled per operator. Times
    come from report_conversations, which the database keeps (reports/models.py)."""
    times_of = ConversationTimes
    of_campaign = (select(Message.conversation_id).where(Message.campaign_id == f.campaign_id)
                   if f.campaign_id is not None else None)

    def opened_in_period(query: Select) -> Select:
        query = query.where(times_of.opened_at >= f.since, times_of.opened_at < f.until)
        if f.channel_id is not None:
            query = query.where(times_of.channel_id == f.channel_id)
        if of_campaign is not None:
            query = query.where(times_of.conversation_id.in_(of_campaign))
        if f.operator_id is not None:  # the conversations they answered first or closed
            query = query.where((times_of.responder_id == f.operator_id) | (times_of.closer_id == f.operator_id))
        return query

    opened_hour = _per_hour(session, times_of.opened_at)
    opened_per_day = _days_of_hours(session.execute(
        opened_in_period(select(opened_hour, func.count())).group_by(opened_hour)))

    response, resolution = _times_by_operator(session, f)

    # Closes in the period, whenever the conversation opened; per closer each in turn through
    # their own index (reports/models.py), as handled below.
    events = ConversationEvent
    closes = [events.kind == "closed", events.at >= f.since, events.at < f.until]
    if f.channel_id is not None:
        of_channel = select(Conversation.id).where(Conversation.channel_id == f.channel_id)
        closes.append(events.conversation_id.in_(of_channel))
    if of_campaign is not None:
        closes.append(events.conversation_id.in_(of_campaign))
    if f.operator_id is not None:
        closes.append(events.actor_id == f.operator_id)
    closed_hour = _per_hour(session, events.at)
    closed_per_day = _days_of_hours(session.execute(select(closed_hour, func.count()).where(*closes)
                                                    .group_by(closed_hour)))
    closers = events.actor_id.in_(select(User.id)) if f.operator_id is None else events.actor_id == f.operator_id
    closed_by = dict(session.execute(select(events.actor_id, func.count()).where(*closes, closers)
                                     .group_by(events.actor_id)).all())

    # Handled: the conversations an operator wrote in during the period, from the days they did
    # (reports/models.py): each (conversation, operator) counts on its first day in the period.
    first_in_period = select(HandledDay.author_id, func.count()).where(
        HandledDay.day >= f.start, HandledDay.day <= f.end,
        (HandledDay.previous_day < f.start) | HandledDay.previous_day.is_(None))
    if f.channel_id is not None:
        first_in_period = first_in_period.where(HandledDay.channel_id == f.channel_id)
    if of_campaign is not None:
        first_in_period = first_in_period.where(HandledDay.conversation_id.in_(of_campaign))
    if f.operator_id is not None:  # theirs are the only conversations handled
        first_in_period = first_in_period.where(HandledDay.author_id == f.operator_id)
    else:  # each author's rows in turn, through the index (0: any operator)
        authors = select(User.id).union_all(select(literal(0)))
        first_in_period = first_in_period.where(HandledDay.author_id.in_(authors))
    handled = dict(session.execute(first_in_period.group_by(HandledDay.author_id)).all())
    handled_overall = handled.pop(0, 0) if f.operator_id is None else handled.get(f.operator_id, 0)

    per_day = Section("conversations_per_day", [Column("day", "day"), Column("opened"), Column("closed")],
                      chart="grouped", series=(1, 2))
    per_day.rows = [[day, opened_per_day[day], closed_per_day[day]] for day in f.days()]

    backlog_query = select(Conversation.status, func.count()).where(Conversation.status.in_(("new", "assigned")))
    if f.channel_id is not None:
        backlog_query = backlog_query.where(Conversation.channel_id == f.channel_id)
    if f.operator_id is not None:
        backlog_query = backlog_query.where(Conversation.assignee_id == f.operator_id)
    if of_campaign is not None:
        backlog_query = backlog_query.where(Conversation.id.in_(of_campaign))
    backlog = dict(session.execute(backlog_query.group_by(Conversation.status)).all())
    summary = Section("conversations_summary", [Column("measure", "label"), Column("value", "int")])
    summary.rows = [["opened", sum(opened_per_day.values())], ["closed", sum(closed_per_day.values())],
                    ["backlog_new", backlog.get("new", 0)], ["backlog_assigned", backlog.get("assigned", 0)]]

    time_columns = [Column("first_responses"), Column("response_median", "seconds"),
                    Column("response_p90", "seconds"), Column("resolved"), Column("resolution_median", "seconds"),
                    Column("resolution_p90", "seconds"), Column("handled"), Column("closed")]
    times = Section("response_times", [Column("operator", "text", empty="everyone"), *time_columns], chart="bars",
                    series=(2,))
    operator_ids = (set(response) | set(resolution) | set(handled) | set(closed_by)) - {None}
    users = _names(session, User, operator_ids)

    def row(label, key, handled_count, closed_count):
        answered, solved = response.get(key, []), resolution.get(key, [])
        return [label, len(answered), nearest_rank(answered, 0.5), nearest_rank(answered, 0.9), len(solved),
                nearest_rank(solved, 0.5), nearest_rank(solved, 0.9), handled_count, closed_count]

    times.rows.append(row(None, None, handled_overall, sum(closed_per_day.values())))
    for operator_id in sorted(operator_ids, key=lambda i: users.get(i, "").lower()):
        times.rows.append(row(users.get(operator_id, f"#{operator_id}"), operator_id,
                              handled.get(operator_id, 0), closed_by.get(operator_id, 0)))
    return [per_day, summary, times]


# --- opt-outs --------------------------------------------------------------------------------------

def opt_outs_report(session: Session, f: Filters) -> list[Section]:
    """Opt-outs recorded in the period, per day and by reason. A channel narrows them to its kind
    of channel's opt-out; an operator to those they made; campaigns do not apply."""
    actions = list(OPT_OUT_ACTIONS)
    if f.channel_id is not None:
        kind = session.scalar(select(Channel.kind).where(Channel.id == f.channel_id))
        actions = ["contact.opt_out_sms"] if kind == "sms" else ["contact.opt_out_whatsapp",
                                                                  "contact.opt_out_marketing"]
    query = select(AuditEntry.at, AuditEntry.action, AuditEntry.via, AuditEntry.detail).where(
        AuditEntry.action.in_(actions), AuditEntry.at >= f.since, AuditEntry.at < f.until)
    if f.operator_id is not None:
        query = query.where(AuditEntry.actor_id == f.operator_id)
    per_day: dict[date, Counter] = defaultdict(Counter)
    for at, action, via, detail in session.execute(query):
        per_day[_local_day(at)][_opt_out_reason(action, via, detail or {})] += 1
    reasons = list(OPT_OUT_REASONS)
    daily = Section("opt_outs_per_day", [Column("day", "day"), *(Column(f"reason_{r}") for r in reasons),
                                         Column("total")], chart="stacked", series=tuple(range(1, 1 + len(reasons))))
    totals: Counter = Counter()
    for day in f.days():
        counts = per_day.get(day, Counter())
        totals.update(counts)
        daily.rows.append([day, *(counts[r] for r in reasons), sum(counts.values())])
    by_reason = Section("opt_outs_by_reason", [Column("reason", "label"), Column("opt_outs")], chart="bars",
                        series=(1,))
    by_reason.rows = [[f"reason_{r}", totals[r]] for r in reasons]
    return [daily, by_reason]


def _opt_out_reason(action: str, via: str, detail: dict) -> str:
    if detail.get("word"):
        return "keyword"  # the customer replied SAIR, PARE, STOP…
    if via == "provider":
        return "provider"  # the provider refused a send because the number opted out there
    if action == "contact.opt_out_marketing":
        return "marketing_stop"  # WhatsApp: the customer stopped marketing messages
    return "operator"


REPORTS = {"messages": messages_report, "replies": replies_report, "conversations": conversations_report,
           "opt_outs": opt_outs_report}
