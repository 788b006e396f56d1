"""Each report's figures against a fixture of known messages, conversations and opt-outs (on
SQLite and PostgreSQL), the filters, the pages in both languages, and the CSV against the table."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from contact_center.audit.service import record
from contact_center.auth import service as auth_service
from contact_center.auth.models import User
from contact_center.campaigns.models import Campaign
from contact_center.channels import service as channels
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.messaging.models import Message
from contact_center.migrations import downgrade, upgrade
from contact_center.reports import queries
from contact_center.reports.period import ZONE, Filters, ReportInputError, parse_filters
from contact_center.reports.tables import cell
from contact_center.templates.models import Template
from contact_center.web.i18n import translator
from tests.web.test_web_ui import login

PERIOD = Filters(start=date(2026, 11, 1), end=date(2026, 11, 3))
QUERY = "start=2026-11-01&end=2026-11-03"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Known:
    """The fixture's rows, by name."""


@pytest.fixture
def known(db):
    return build_known(db)


def build_known(db) -> Known:
    k = Known()
    k.sms = sms = channels.create_channel(db, name="SMS Principal", provider="kolmeya_sandbox",
                                          credentials={"token": "t"})
    k.sms2 = channels.create_channel(db, name="SMS Dois", provider="kolmeya_sandbox", credentials={"token": "t"})
    k.ana, k.bruno, k.sofia = (auth_service.create_user(db, username=n, name=n.title(), password="correct horse",
                                                        role=r)
                               for n, r in (("ana", "agent"), ("bruno", "agent"), ("sofia", "supervisor")))
    k.template = Template(name="Cobrança", body="Olá {{ contact.first_name }}")
    db.add(k.template)
    db.flush()
    k.c1 = Campaign(name="Fatura novembro", channel_id=sms.id, template_id=k.template.id, body_template="x",
                    status="completed", created_by_id=k.sofia.id)
    k.c2 = Campaign(name="Aviso avulso", channel_id=k.sms2.id, body_template="y", status="completed",
                    created_by_id=k.ana.id)
    db.add_all([k.c1, k.c2])
    db.flush()
    numbers = iter(range(1, 100))

    def conversation(channel, phone, opened, status="done", assignee=None):
        row = Conversation(channel_id=channel.id, phone_e164=phone, phone_key=phone, status=status,
                           assignee_id=assignee.id if assignee else None, created_at=at(opened),
                           last_activity_at=at(opened))
        db.add(row)
        db.flush()
        return row

    def message(conv, direction, created, status, *, author=None, campaign=None, reply_to=None, reason=None):
        n = next(numbers)
        row = Message(reference=f"ref-{n}", channel_id=conv.channel_id, conversation_id=conv.id,
                      direction=direction, origin="tests", phone=conv.phone_e164, phone_e164=conv.phone_e164,
                      body=f"mensagem {n}", status=status, status_reason=reason,
                      author_id=author.id if author else None, campaign_id=campaign.id if campaign else None,
                      in_reply_to_id=reply_to.id if reply_to else None, created_at=at(created))
        db.add(row)
        db.flush()
        return row

    def closed(conv, when, actor):
        db.add(ConversationEvent(conversation_id=conv.id, kind="closed", at=at(when), actor_id=actor.id))

    # 1: a campaign message answered by the customer, then by Ana 15 min later; Ana closes it an hour after opening.
    k.message = message
    k.conv1 = conversation(sms, "+5511900000001", "2026-11-01T12:00:00")
    k.m1 = message(k.conv1, "out", "2026-11-01T12:00:00", "delivered", campaign=k.c1)
    message(k.conv1, "in", "2026-11-01T12:10:00", "received", reply_to=k.m1)
    message(k.conv1, "out", "2026-11-01T12:25:00", "read", author=k.ana)
    closed(k.conv1, "2026-11-01T13:00:00", k.ana)
    message(k.conv1, "out", "2026-11-03T12:00:00", "failed", author=k.ana, reason="número inválido")
    # 2: opened at 23:30 in Brasília on the 1st (02:30 UTC on the 2nd); Bruno answers in 5 min, Ana
    # writes at midnight (the 2nd in Brasília), Bruno closes two hours after opening.
    k.conv2 = conversation(sms, "+5511900000002", "2026-11-02T02:30:00")
    message(k.conv2, "in", "2026-11-02T02:30:00", "received")
    message(k.conv2, "out", "2026-11-02T02:35:00", "delivered", author=k.bruno)
    message(k.conv2, "out", "2026-11-02T03:00:00", "sent", author=k.ana)
    closed(k.conv2, "2026-11-02T04:30:00", k.bruno)
    # 3: on the second channel, campaign messages failed, blocked, sent and read; two replies to one; still new.
    k.conv3 = conversation(k.sms2, "+5511900000003", "2026-11-02T15:00:00", status="new")
    message(k.conv3, "out", "2026-11-02T15:00:00", "failed", campaign=k.c1, reason="número inválido")
    message(k.conv3, "out", "2026-11-02T15:01:00", "blocked", campaign=k.c1,
            reason="not sent: the contact opted out of SMS")
    k.m9 = message(k.conv3, "out", "2026-11-02T15:02:00", "sent", campaign=k.c2)
    m10 = message(k.conv3, "out", "2026-11-02T15:03:00", "read", campaign=k.c2)
    message(k.conv3, "in", "2026-11-02T15:30:00", "received", reply_to=m10)
    message(k.conv3, "in", "2026-11-02T16:00:00", "received", reply_to=m10)
    # 4: opened before the period, assigned to Ana, who writes in it during the period.
    k.conv4 = conversation(sms, "+5511900000004", "2026-10-20T10:00:00", status="assigned", assignee=k.ana)
    message(k.conv4, "out", "2026-10-20T10:00:00", "delivered", author=k.ana)
    message(k.conv4, "out", "2026-11-03T10:00:00", "delivered", author=k.ana)
    # Outside the period on both sides (Brasília days): 02:59 UTC on the 1st, 03:00 UTC on the 4th.
    message(k.conv4, "out", "2026-11-01T02:59:00", "delivered", author=k.ana)
    message(k.conv4, "out", "2026-11-04T03:00:00", "delivered", author=k.ana)

    def opt_out(action, when, via, actor=None, **detail):  # the audit log is append-only: dated as written
        entry = record(db, action=action, subject_type="contact", subject_id=1,
                       actor_id=actor.id if actor else None, via=via, **detail)
        entry.at = at(when)
        db.flush()

    opt_out("contact.opt_out_sms", "2026-11-01T15:00:00", "webhook", word="SAIR")
    opt_out("contact.opt_out_sms", "2026-11-02T15:00:00", "provider", reason="blacklisted")
    opt_out("contact.opt_out_marketing", "2026-11-02T16:00:00", "webhook")
    opt_out("contact.opt_out_whatsapp", "2026-11-03T16:00:00", "ui", actor=k.ana)
    opt_out("contact.opt_out_sms.cleared", "2026-11-03T17:00:00", "ui", actor=k.ana)
    opt_out("contact.opt_out_whatsapp", "2026-10-30T16:00:00", "api")
    db.commit()
    return k


def test_roll_ups_follow_status_changes_deletes_and_later_replies(db, known):
    def campaign_rates():
        return table(queries.messages_report(db, PERIOD), "delivery_per_campaign").rows

    # A status callback applied at the driver level, as the webhook writer does: sent → delivered.
    db.execute(text("UPDATE messages SET status = 'delivered' WHERE id = :id"), {"id": known.m9.id})
    assert campaign_rates()[0] == ["Aviso avulso", 2, 2, 0, 1.0]
    db.execute(text("UPDATE messages SET body = 'editada' WHERE id = :id"), {"id": known.m9.id})  # not a status
    assert campaign_rates()[0] == ["Aviso avulso", 2, 2, 0, 1.0]
    replies = table(queries.replies_report(db, PERIOD), "replies_per_campaign").rows
    assert replies[0] == ["Aviso avulso", 2, 1, 2, 0.5]
    known.message(known.conv3, "in", "2026-11-05T10:00:00", "received", reply_to=known.m9)  # days later
    known.message(known.conv3, "in", "2026-11-05T10:05:00", "received", reply_to=known.m9)
    replies = table(queries.replies_report(db, PERIOD), "replies_per_campaign").rows
    assert replies[0] == ["Aviso avulso", 2, 2, 4, 1.0]
    db.delete(db.get(Message, known.m1.id))
    db.flush()
    assert campaign_rates()[1] == ["Fatura novembro", 1, 0, 1, 0.0]


def test_statements_that_write_many_messages_count_each_once(db, known):
    """A campaign's batch goes in as one statement and a dispatch marks a batch in one: the
    counters sum what each statement changed (per statement on PostgreSQL, per row on SQLite)."""
    def counted():
        rows = db.execute(text("SELECT status, sum(messages) FROM report_message_days WHERE campaign_id = :c "
                               "GROUP BY status"), {"c": known.c2.id}).all()
        return {status: int(total) for status, total in rows if total}

    def stored():
        rows = db.execute(text("SELECT status, count(*) FROM messages WHERE campaign_id = :c AND direction = 'out' "
                               "GROUP BY status"), {"c": known.c2.id}).all()
        return dict(rows)

    batch = [{"reference": f"lote-{n}", "channel_id": known.sms2.id, "conversation_id": known.conv3.id,
              "campaign_id": known.c2.id, "direction": "out", "origin": "campaign", "phone": "+5511900000003",
              "phone_e164": "+5511900000003", "body": "Aviso", "status": "scheduled",
              "created_at": at(f"2026-11-0{1 + n % 3}T15:00:00")} for n in range(300)]
    db.execute(Message.__table__.insert().values(batch))
    assert counted() == stored() and stored()["scheduled"] == 300
    db.execute(text("UPDATE messages SET status = CASE WHEN id % 3 = 0 THEN 'failed' ELSE 'delivered' END "
                    "WHERE reference LIKE 'lote-%'"))
    db.execute(text("UPDATE messages SET body = 'Aviso editado' WHERE reference LIKE 'lote-%'"))  # no state moved
    assert counted() == stored() and "scheduled" not in counted()
    db.execute(text("DELETE FROM messages WHERE reference LIKE 'lote-%' AND id % 2 = 0"))
    assert counted() == stored()


def test_the_migration_fills_the_roll_ups_from_what_is_stored(own_database):
    factory = sessionmaker(bind=own_database)
    with factory() as session:
        build_known(session)
    with factory() as session:
        before = {name: report(session, PERIOD) for name, report in queries.REPORTS.items()}
    downgrade(own_database, "0017")
    upgrade(own_database)
    with factory() as session:
        after = {name: report(session, PERIOD) for name, report in queries.REPORTS.items()}
    assert after == before
    assert table(after["conversations"], "response_times").rows[0] == [None, 2, 300, 900, 2, 3600, 7200, 3, 2]


def table(sections, key):
    [found] = [s for s in sections if s.key == key]
    return found


def test_messages_per_day_channel_and_state_in_brasilia_days(db, known):
    daily = table(queries.messages_report(db, PERIOD), "messages_per_day")
    keys = [c.key for c in daily.columns]
    rows = {(r[0], r[1]): dict(zip(keys[2:], r[2:])) for r in daily.rows}
    assert len(daily.rows) == 6  # three days × the two channels that sent
    assert rows[(date(2026, 11, 1), "SMS Principal")] == {"state_read": 1, "state_delivered": 2, "state_sent": 0,
                                                           "state_pending": 0, "state_failed": 0, "state_blocked": 0,
                                                           "state_cancelled": 0, "total": 3}
    assert rows[(date(2026, 11, 2), "SMS Principal")]["state_sent"] == 1  # 03:00 UTC is midnight in Brasília
    assert rows[(date(2026, 11, 2), "SMS Principal")]["total"] == 1
    assert rows[(date(2026, 11, 3), "SMS Principal")] | {} == {**dict.fromkeys(keys[2:], 0), "state_failed": 1,
                                                               "state_delivered": 1, "total": 2}
    assert rows[(date(2026, 11, 2), "SMS Dois")] == {**dict.fromkeys(keys[2:], 0), "state_failed": 1,
                                                     "state_blocked": 1, "state_sent": 1, "state_read": 1, "total": 4}
    assert rows[(date(2026, 11, 1), "SMS Dois")]["total"] == 0


def test_delivery_rates_and_failure_reasons(db, known):
    sections = queries.messages_report(db, PERIOD)
    assert table(sections, "delivery_per_channel").rows == [["SMS Principal", 6, 4, 1, pytest.approx(4 / 6)],
                                                            ["SMS Dois", 3, 1, 1, pytest.approx(1 / 3)]]
    assert table(sections, "delivery_per_campaign").rows == [["Aviso avulso", 2, 1, 0, 0.5],
                                                             ["Fatura novembro", 2, 1, 1, 0.5]]
    reasons = table(sections, "failure_reasons").rows
    assert [r[:3] for r in reasons] == [["número inválido", "status_failed", 2],
                                        ["not sent: the contact opted out of SMS", "status_blocked", 1]]
    assert "+5511900000001" in reasons[0][3] and "+5511900000003" in reasons[0][3]  # both examples, newest first


def test_filters_narrow_the_messages(db, known):
    only_second = queries.messages_report(db, Filters(PERIOD.start, PERIOD.end, channel_id=known.sms2.id))
    assert {r[1] for r in table(only_second, "messages_per_day").rows} == {"SMS Dois"}
    by_ana = queries.messages_report(db, Filters(PERIOD.start, PERIOD.end, operator_id=known.ana.id))
    assert table(by_ana, "delivery_per_channel").rows == [["SMS Principal", 4, 2, 1, 0.5]]
    assert table(by_ana, "delivery_per_campaign").rows == []
    one_campaign = queries.messages_report(db, Filters(PERIOD.start, PERIOD.end, campaign_id=known.c1.id))
    assert table(one_campaign, "delivery_per_campaign").rows == [["Fatura novembro", 2, 1, 1, 0.5]]


def test_replies_per_campaign_and_template(db, known):
    sections = queries.replies_report(db, PERIOD)
    assert table(sections, "replies_per_campaign").rows == [["Aviso avulso", 2, 1, 2, 0.5],
                                                            ["Fatura novembro", 1, 1, 1, 1.0]]
    assert table(sections, "replies_per_template").rows == [["Cobrança", 1, 1, 1, 1.0], [None, 2, 1, 2, 0.5]]
    mine = queries.replies_report(db, Filters(PERIOD.start, PERIOD.end, operator_id=known.sofia.id))
    assert table(mine, "replies_per_campaign").rows == [["Fatura novembro", 1, 1, 1, 1.0]]


def test_conversations_times_per_operator(db, known):
    sections = queries.conversations_report(db, PERIOD)
    assert table(sections, "conversations_per_day").rows == [[date(2026, 11, 1), 2, 1], [date(2026, 11, 2), 1, 1],
                                                             [date(2026, 11, 3), 0, 0]]
    assert table(sections, "conversations_summary").rows == [["opened", 3], ["closed", 2], ["backlog_new", 1],
                                                             ["backlog_assigned", 1]]
    # operator, first responses, median, p90, resolved, median, p90, handled, closed
    assert table(sections, "response_times").rows == [
        [None, 2, 300, 900, 2, 3600, 7200, 3, 2],
        ["Ana", 1, 900, 900, 1, 3600, 3600, 3, 1],
        ["Bruno", 1, 300, 300, 1, 7200, 7200, 1, 1],
    ]


def test_conversations_of_one_operator(db, known):
    sections = queries.conversations_report(db, Filters(PERIOD.start, PERIOD.end, operator_id=known.ana.id))
    assert table(sections, "conversations_per_day").rows[0] == [date(2026, 11, 1), 1, 1]
    assert table(sections, "response_times").rows == [[None, 1, 900, 900, 1, 3600, 3600, 3, 1],
                                                      ["Ana", 1, 900, 900, 1, 3600, 3600, 3, 1]]
    assert table(sections, "conversations_summary").rows[2:] == [["backlog_new", 0], ["backlog_assigned", 1]]


def handled_by_definition(db, f: Filters) -> dict[int | None, int]:
    """Conversations handled, straight from the definition: those an operator wrote a message in
    on a Brasília day of the period (None: any operator)."""
    pairs = {(m.author_id, m.conversation_id) for m in db.query(Message).filter(Message.author_id.is_not(None))
             if f.start <= m.created_at.astimezone(ZONE).date() <= f.end}
    counts = Counter(author for author, _ in pairs)
    counts[None] = len({conversation for _, conversation in pairs})
    return dict(counts)


def handled_in_report(db, f: Filters) -> dict[int | None, int]:
    rows = table(queries.conversations_report(db, f), "response_times").rows
    names = {u.name: u.id for u in db.query(User)}
    return {names.get(r[0]): r[7] for r in rows if r[7]} | {None: rows[0][7]}


def test_conversations_handled_count_each_once_in_any_period_through_late_writes_and_merges(db, known):
    # Bruno writes in the first conversation on three days, one of them stored after the later ones.
    for when in ("2026-11-03T13:00:00", "2026-11-05T13:00:00", "2026-11-01T20:00:00", "2026-11-03T14:00:00"):
        known.message(known.conv1, "out", when, "delivered", author=known.bruno)
    periods = [Filters(date(2026, 10, 20) + timedelta(days=first), date(2026, 10, 20) + timedelta(days=first + n))
               for first in range(18) for n in (0, 1, 6)]

    def agree():
        for f in periods:
            assert handled_in_report(db, f) == handled_by_definition(db, f), f

    agree()
    # A merge moves the second conversation's messages into the first, then removes it.
    kept, gone = known.conv1.id, known.conv2.id
    db.execute(text("UPDATE messages SET conversation_id = :kept WHERE conversation_id = :gone"),
               {"kept": kept, "gone": gone})
    db.execute(text("DELETE FROM conversation_events WHERE conversation_id = :gone"), {"gone": gone})
    db.execute(text("DELETE FROM conversations WHERE id = :gone"), {"gone": gone})
    db.expire_all()
    agree()
    assert handled_in_report(db, PERIOD) == {None: 2, known.ana.id: 2, known.bruno.id: 1}
    left = db.execute(text("SELECT count(*) FROM report_handled_days WHERE conversation_id = :gone"),
                      {"gone": gone}).scalar()
    assert left == 0


def test_opt_outs_per_day_and_reason(db, known):
    sections = queries.opt_outs_report(db, PERIOD)
    assert table(sections, "opt_outs_per_day").rows == [[date(2026, 11, 1), 1, 0, 0, 0, 1],
                                                        [date(2026, 11, 2), 0, 1, 1, 0, 2],
                                                        [date(2026, 11, 3), 0, 0, 0, 1, 1]]
    assert table(sections, "opt_outs_by_reason").rows == [["reason_keyword", 1], ["reason_provider", 1],
                                                          ["reason_marketing_stop", 1], ["reason_operator", 1]]
    sms_only = queries.opt_outs_report(db, Filters(PERIOD.start, PERIOD.end, channel_id=known.sms.id))
    assert table(sms_only, "opt_outs_by_reason").rows == [["reason_keyword", 1], ["reason_provider", 1],
                                                          ["reason_marketing_stop", 0], ["reason_operator", 0]]


def test_filters_default_to_the_last_30_days_and_refuse_bad_input():
    default = parse_filters({}, now=date(2026, 12, 1))
    assert (default.start, default.end) == (date(2026, 11, 2), date(2026, 12, 1))
    assert default.since == at("2026-11-02T03:00:00")
    for values, key, field in (({"start": "01/11/2026"}, "reports.error.date", "start"),
                               ({"start": "2026-11-05", "end": "2026-11-01"}, "reports.error.order", "start"),
                               ({"start": "2024-01-01", "end": "2026-11-01"}, "reports.error.too_long", "start"),
                               ({"channel": "abc"}, "reports.error.id", "channel"),
                               ({"operator": "99999999999"}, "reports.error.id", "operator")):
        with pytest.raises(ReportInputError) as error:
            parse_filters(values, now=date(2026, 12, 1))
        assert (error.value.key, error.value.field) == (key, field)


class _Tables(HTMLParser):
    """Each report table's cells, by section."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.section = None
        self.row = self.text = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and "data-section" in attrs:
            self.section = attrs["data-section"]
            self.tables[self.section] = []
        elif tag == "tr" and self.section:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.text = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.text is not None:
            self.row.append(self.text.strip())
            self.text = None
        elif tag == "tr" and self.row is not None:
            self.tables[self.section].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.text is not None:
            self.text += data


def page_tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


@pytest.mark.parametrize("lang", ["pt-BR", "en"])
def test_each_csv_matches_its_table_on_the_page(client, known, lang):
    login(client, "sofia")
    client.get(f"/lang/{lang}?next=/reports")
    t = translator(lang)
    for name in queries.NAMES:
        page = client.get(f"/reports/{name}?{QUERY}")
        assert page.status_code == 200, page.text
        shown = page_tables(page.text)
        sections = queries.REPORTS[name](client.app.state.session_factory(), PERIOD)
        for section in sections:
            downloaded = client.get(f"/reports/{name}.csv?{QUERY}&section={section.key}")
            assert downloaded.status_code == 200 and downloaded.headers["content-type"].startswith("text/csv")
            assert section.key in downloaded.headers["content-disposition"]
            rows = list(csv.reader(io.StringIO(downloaded.text.removeprefix("\ufeff"))))
            assert rows[0][0] == t(f"reports.col.{section.columns[0].key}")
            assert len(rows) - 1 == len(section.rows)
            if section.key not in shown or not shown[section.key]:
                continue  # an empty state: nothing counted, no table
            header, *body = shown[section.key]
            assert header == [t(f"reports.col.{c.key}") for c in section.columns]
            assert len(body) == len(rows) - 1
            for html_row, csv_row in zip(body, rows[1:]):
                for column, html_value, csv_value in zip(section.columns, html_row, csv_row):
                    assert html_value == cell(_parsed(csv_value, column.kind), column, lang, t) or (
                        column.kind in ("label", "text") and html_value == csv_value), (section.key, column.key)


def _parsed(value: str, kind: str):
    if value == "":
        return None
    return {"day": date.fromisoformat, "int": int, "rate": float, "seconds": float}.get(kind, str)(value)


def test_the_page_in_both_languages_with_charts(client, known):
    login(client, "sofia")
    pt = client.get(f"/reports/conversations?{QUERY}")
    assert pt.status_code == 200
    assert "Tempo de primeira resposta e de resolução por operador" in pt.text
    assert pt.text.count("<svg") == 2  # per day, per operator; the summary is a table only
    assert "<title>" in pt.text and "15 min 00 s" in pt.text
    client.get("/lang/en?next=/reports")
    en = client.get(f"/reports/conversations?{QUERY}")
    assert "First-response and resolution time per operator" in en.text and "Brasília time" in en.text


def test_bad_filters_are_said_in_portuguese_and_nothing_is_computed(client, known):
    login(client, "sofia")
    page = client.get("/reports/messages?start=31/11/2026", headers={"accept": "text/html"})
    assert page.status_code == 422
    assert "Data inválida em “start”: “31/11/2026”. Use o formato AAAA-MM-DD" in page.text
    assert 'aria-invalid="true"' in page.text and "<svg" not in page.text
    download = client.get("/reports/messages.csv?end=2026-01-01&start=2026-02-01")
    assert download.status_code == 422
    assert download.json()["error"]["field"] == "start"
    assert "Período invertido" in download.json()["error"]["message"]
    assert client.get("/reports/nada").status_code == 404
    assert client.get(f"/reports/messages.csv?{QUERY}&section=outra").status_code == 422


def test_reports_are_for_supervisors_and_admins(client, known, make_user):
    login(client, "ana")
    assert client.get("/reports", headers={"accept": "text/html"}).status_code == 403
    assert 'id="nav-reports"' not in client.get("/inbox").text
    login(client, "sofia")
    assert 'id="nav-reports"' in client.get("/inbox").text


def test_json_api(client, known, make_user):
    _, admin_token = make_user("root", "admin")
    _, agent_token = make_user("zeca", "agent")
    answer = client.get(f"/api/reports/replies?{QUERY}", headers={"Authorization": f"Bearer {admin_token}"})
    assert answer.status_code == 200
    assert answer.json()["tables"]["replies_per_campaign"]["rows"][1] == {
        "campaign": "Fatura novembro", "reached": 1, "replied_messages": 1, "replies": 1, "reply_rate": 1.0}
    assert client.get("/api/reports/replies", headers={"Authorization": f"Bearer {agent_token}"}).status_code == 403
    bad = client.get("/api/reports/replies?campaign=-1", headers={"Authorization": f"Bearer {admin_token}"})
    assert bad.status_code == 422 and re.search(r"Valor inválido em “campaign”", bad.json()["error"]["message"])
