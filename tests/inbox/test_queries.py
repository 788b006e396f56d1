"""The inbox list: who sees what, filters, search by name or any written number, keyset pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contact_center.channels import service as channels
from contact_center.contacts import service as contacts
from contact_center.errors import InvalidInput
from contact_center.inbox import queries, workflow
from contact_center.inbox.queries import InboxFilter


def titles(page) -> list[str]:
    return [row.title for row in page.rows]


@pytest.fixture
def inbox(db, sms, people, customer_writes):
    """Four conversations: Maria (new), João (ana's), Pedro (bruno's), Carla (done, ana handled it)."""
    base = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    made = {}
    for minute, (name, phone) in enumerate((("Maria Souza", "+55 11 98000-0001"), ("João Pereira", "(21) 90000-0002"),
                                            ("Pedro Alves", "5531900000003"), ("Carla Nunes", "+55 41 90000-0004"))):
        contacts.create_contact(db, {"name": name, "mobile": phone})
        made[name.split()[0]] = customer_writes(sms, phone, f"Oi, aqui é {name}", at=base + timedelta(minutes=minute))
    workflow.take(db, made["João"].id, people["ana"])
    workflow.take(db, made["Pedro"].id, people["bruno"])
    workflow.take(db, made["Carla"].id, people["ana"])
    workflow.close(db, made["Carla"].id, people["ana"])
    return made


def test_agents_see_unassigned_and_their_own_supervisors_see_all(db, people, inbox):
    everything = InboxFilter(status="any")
    assert titles(queries.list_conversations(db, people["ana"], everything)) == [
        "Carla Nunes", "João Pereira", "Maria Souza"]
    assert titles(queries.list_conversations(db, people["bruno"], everything)) == ["Pedro Alves", "Maria Souza"]
    for boss in ("sofia", "root"):
        assert titles(queries.list_conversations(db, people[boss], everything)) == [
            "Carla Nunes", "Pedro Alves", "João Pereira", "Maria Souza"]


def test_views_and_statuses(db, people, inbox):
    sofia = people["sofia"]
    assert titles(queries.list_conversations(db, sofia)) == ["Pedro Alves", "João Pereira", "Maria Souza"]  # open
    assert titles(queries.list_conversations(db, sofia, InboxFilter(view="unassigned"))) == ["Maria Souza"]
    assert titles(queries.list_conversations(db, people["ana"], InboxFilter(view="mine"))) == ["João Pereira"]
    assert titles(queries.list_conversations(db, people["ana"], InboxFilter(view="mine", status="done"))) == [
        "Carla Nunes"]
    assert titles(queries.list_conversations(db, sofia, InboxFilter(status="new"))) == ["Maria Souza"]
    assert titles(queries.list_conversations(db, sofia, InboxFilter(status="assigned"))) == [
        "Pedro Alves", "João Pereira"]


def test_channel_filter(db, people, sms, inbox, customer_writes):
    other = channels.create_channel(db, name="SMS Cobrança", provider="kolmeya_sandbox", credentials={"token": "t"})
    customer_writes(other, "+55 11 90000-0009", "Boleto?")
    sofia = people["sofia"]
    assert titles(queries.list_conversations(db, sofia, InboxFilter(channel_id=other.id))) == ["+5511900000009"]
    assert queries.list_conversations(db, sofia, InboxFilter(channel_id=sms.id)).total == 3


@pytest.mark.parametrize("written", ["+55 11 98000-0001", "5511980000001", "(11) 98000-0001", "011 98000-0001",
                                     "11 9 8000 0001", "551180000001", "maria", "SOUZA", "8000-0001"])
def test_search_by_name_or_any_written_form_of_the_number(db, people, inbox, written):
    page = queries.list_conversations(db, people["sofia"], InboxFilter(search=written, status="any"))
    assert titles(page) == ["Maria Souza"], written


def test_search_respects_what_an_agent_may_see(db, people, inbox):
    assert titles(queries.list_conversations(db, people["bruno"], InboxFilter(search="joão", status="any"))) == []
    assert titles(queries.list_conversations(db, people["ana"], InboxFilter(search="joão", status="any"))) == [
        "João Pereira"]


def test_search_text_is_not_a_pattern(db, people, inbox):
    assert queries.list_conversations(db, people["sofia"], InboxFilter(search="%", status="any")).total == 0
    assert queries.list_conversations(db, people["sofia"], InboxFilter(search="_", status="any")).total == 0


def test_rows_carry_the_last_message(db, people, inbox):
    row = queries.list_conversations(db, people["sofia"], InboxFilter(view="unassigned")).rows[0]
    assert (row.last_body, row.last_direction, row.last_status, row.unread_count) == (
        "Oi, aqui é Maria Souza", "in", "received", 1)


def test_keyset_pages_cover_everything_once(db, people, sms, customer_writes):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(125):
        # pairs share a timestamp, so the id breaks ties
        customer_writes(sms, f"+55 11 9{i:04d}-1234", f"Mensagem {i}", at=base + timedelta(seconds=i // 2))
    seen, cursor, pages = [], None, 0
    while True:
        page = queries.list_conversations(db, people["sofia"], before=cursor, limit=50)
        assert page.total == 125
        seen += [row.id for row in page.rows]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 125 and len(set(seen)) == 125
    stamps = [queries.conversation_row(db, people["sofia"], i).last_activity_at for i in seen]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize("bad", [{"view": "everyone"}, {"status": "closed"}, {"search": "x" * 101}])
def test_unknown_filters_are_refused(bad):
    with pytest.raises(InvalidInput):
        InboxFilter(**bad)


def test_a_malformed_cursor_is_refused(db, people, inbox):
    with pytest.raises(InvalidInput) as caught:
        queries.list_conversations(db, people["sofia"], before="yesterday")
    assert caught.value.field == "before"


def test_the_timeline_merges_messages_and_status_changes_in_order(db, people, sms, customer_writes):
    conversation = customer_writes(sms, "+55 11 90000-0001", "Quero segunda via do boleto")
    workflow.take(db, conversation.id, people["ana"])
    workflow.send(db, conversation.id, people["ana"], "Claro, Maria! Segue o link.")
    workflow.transfer(db, conversation.id, people["ana"], people["bruno"].id)
    workflow.close(db, conversation.id, people["bruno"])

    entries = queries.timeline(db, conversation, people["bruno"]).entries
    described = [(e.kind, e.message.body if e.kind == "message" else e.change) for e in entries]
    assert described == [("message", "Quero segunda via do boleto"), ("event", "taken"),
                         ("message", "Claro, Maria! Segue o link."), ("event", "transferred"), ("event", "closed")]
    transferred = entries[3]
    assert (transferred.actor_name, transferred.previous_assignee_name, transferred.assignee_name) == (
        "Ana Lima", "Ana Lima", "Bruno Dias")
    sent = entries[2]
    assert (sent.author_name, sent.channel_name, sent.message.status) == ("Ana Lima", "SMS Principal", "queued")


def test_the_timeline_pages_back(db, people, sms, customer_writes):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    conversation = None
    for i in range(30):
        conversation = customer_writes(sms, "+55 11 90000-0001", f"msg {i}", at=base + timedelta(minutes=i))
    newest = queries.timeline(db, conversation, people["sofia"], limit=20)
    assert newest.has_older and [e.message.body for e in newest.entries][0] == "msg 10"
    older = queries.timeline(db, conversation, people["sofia"], before_id=newest.oldest_message_id, limit=20)
    assert not older.has_older and [e.message.body for e in older.entries] == [f"msg {i}" for i in range(10)]
