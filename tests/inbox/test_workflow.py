"""Every conversation transition and who may make it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from contact_center.errors import InvalidInput, PermissionDenied
from contact_center.inbox import queries, workflow
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.inbox.workflow import StaleAction
from contact_center.messaging.models import Message

PHONE = "+55 11 90000-0001"


def events(db, conversation) -> list[tuple[str, str | None, str | None]]:
    """(kind, actor username, assignee username) of the conversation's status changes, in order."""
    from contact_center.auth.models import User

    rows = db.scalars(select(ConversationEvent).where(ConversationEvent.conversation_id == conversation.id)
                      .order_by(ConversationEvent.id)).all()
    name = lambda user_id: db.get(User, user_id).username if user_id else None  # noqa: E731
    return [(e.kind, name(e.actor_id), name(e.assignee_id)) for e in rows]


def state(db, conversation) -> tuple[str, str | None]:
    db.refresh(conversation)
    from contact_center.auth.models import User

    return conversation.status, db.get(User, conversation.assignee_id).username if conversation.assignee_id else None


# --- take -------------------------------------------------------------------------------------------

def test_take_assigns_a_new_conversation_and_records_who(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    assert conversation.status == "new" and conversation.assignee_id is None

    workflow.take(db, conversation.id, people["ana"])

    assert state(db, conversation) == ("assigned", "ana")
    assert events(db, conversation) == [("taken", "ana", "ana")]


def test_taking_what_someone_else_took_is_a_clear_conflict_and_changes_nothing(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["bruno"])

    with pytest.raises(StaleAction) as caught:
        workflow.take(db, conversation.id, people["sofia"])

    assert caught.value.message == "Bruno Dias is already handling this conversation"
    assert caught.value.current == {"status": "assigned", "assignee_id": people["bruno"].id,
                                    "assignee_name": "Bruno Dias"}
    assert state(db, conversation) == ("assigned", "bruno")
    assert events(db, conversation) == [("taken", "bruno", "bruno")]


def test_take_loses_the_race_when_the_row_changed_after_it_was_read(db, sms, people, customer_writes):
    """The conditional UPDATE is what decides: the operator's copy still says `new`, the row does not."""
    conversation = customer_writes(sms, PHONE)
    assert db.get(Conversation, conversation.id).status == "new"  # loaded in this session's identity map
    db.execute(text("UPDATE conversations SET status = 'assigned', assignee_id = :bruno WHERE id = :id"),
               {"bruno": people["bruno"].id, "id": conversation.id})  # another operator, behind the ORM's back

    with pytest.raises(StaleAction) as caught:
        workflow.take(db, conversation.id, people["ana"])

    assert "Bruno Dias" in caught.value.message
    assert state(db, conversation) == ("assigned", "bruno")
    assert events(db, conversation) == []


def test_taking_your_own_conversation_again_changes_nothing(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    workflow.take(db, conversation.id, people["ana"])
    assert events(db, conversation) == [("taken", "ana", "ana")]


def test_a_closed_conversation_cannot_be_taken(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.close(db, conversation.id, people["ana"])
    with pytest.raises(StaleAction, match="closed"):
        workflow.take(db, conversation.id, people["bruno"])


# --- release ----------------------------------------------------------------------------------------

def test_the_assignee_releases_back_to_the_queue(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    workflow.release(db, conversation.id, people["ana"])
    assert state(db, conversation) == ("new", None)
    assert events(db, conversation)[-1] == ("released", "ana", "ana")


def test_an_agent_cannot_touch_another_agents_conversation(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    for action in (workflow.release, workflow.close, workflow.reopen):
        with pytest.raises(PermissionDenied, match="Ana Lima is handling this conversation"):
            action(db, conversation.id, people["bruno"])
    with pytest.raises(StaleAction, match="Ana Lima is already handling"):
        workflow.take(db, conversation.id, people["bruno"])
    with pytest.raises(PermissionDenied):
        workflow.transfer(db, conversation.id, people["bruno"], people["bruno"].id)
    assert state(db, conversation) == ("assigned", "ana")


def test_a_supervisor_releases_anyones_conversation(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    workflow.release(db, conversation.id, people["sofia"])
    assert state(db, conversation) == ("new", None)
    assert events(db, conversation)[-1] == ("released", "sofia", "ana")


def test_releasing_an_unassigned_conversation_is_stale(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    with pytest.raises(StaleAction, match="no longer assigned"):
        workflow.release(db, conversation.id, people["sofia"])


# --- transfer / assign ------------------------------------------------------------------------------

def test_the_assignee_transfers_to_a_colleague(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    workflow.transfer(db, conversation.id, people["ana"], people["bruno"].id)
    assert state(db, conversation) == ("assigned", "bruno")
    event = db.scalars(select(ConversationEvent).order_by(ConversationEvent.id.desc())).first()
    assert (event.kind, event.previous_assignee_id, event.assignee_id) == (
        "transferred", people["ana"].id, people["bruno"].id)
    # ana passed it on: it is no longer hers to see
    with pytest.raises(PermissionDenied):
        workflow.get_conversation(db, conversation.id, people["ana"])


def test_a_supervisor_assigns_a_new_conversation_and_reassigns_it(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.transfer(db, conversation.id, people["sofia"], people["ana"].id)
    workflow.transfer(db, conversation.id, people["root"], people["bruno"].id)
    assert state(db, conversation) == ("assigned", "bruno")
    assert events(db, conversation) == [("assigned", "sofia", "ana"), ("transferred", "root", "bruno")]


def test_agents_do_not_assign_new_conversations(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    with pytest.raises(PermissionDenied, match="only supervisors assign"):
        workflow.transfer(db, conversation.id, people["ana"], people["bruno"].id)
    assert state(db, conversation) == ("new", None)


@pytest.mark.parametrize("target", ["nobody", "inactive", "same"])
def test_transfer_to_a_bad_target_is_refused_with_the_reason(db, sms, people, customer_writes, target):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    people["bruno"].active = False
    db.flush()
    assignee_id = {"nobody": 999_999, "inactive": people["bruno"].id, "same": people["ana"].id}[target]
    with pytest.raises(InvalidInput) as caught:
        workflow.transfer(db, conversation.id, people["sofia"], assignee_id)
    assert caught.value.field == "assignee_id"
    assert state(db, conversation) == ("assigned", "ana")


def test_a_closed_conversation_is_reopened_before_it_is_assigned(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.close(db, conversation.id, people["sofia"])
    with pytest.raises(InvalidInput, match="reopen"):
        workflow.transfer(db, conversation.id, people["sofia"], people["ana"].id)


# --- close / reopen ---------------------------------------------------------------------------------

def test_close_keeps_who_handled_it_and_reopen_assigns_to_who_reopens(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    workflow.close(db, conversation.id, people["ana"])
    assert state(db, conversation) == ("done", "ana")
    with pytest.raises(StaleAction, match="closed"):
        workflow.close(db, conversation.id, people["ana"])

    workflow.reopen(db, conversation.id, people["sofia"])
    assert state(db, conversation) == ("assigned", "sofia")
    assert events(db, conversation) == [("taken", "ana", "ana"), ("closed", "ana", "ana"),
                                        ("reopened", "sofia", "sofia")]
    with pytest.raises(StaleAction):
        workflow.reopen(db, conversation.id, people["sofia"])


def test_an_agent_may_close_an_unassigned_conversation(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE, "PROMOÇÃO!!! clique aqui")
    workflow.close(db, conversation.id, people["bruno"])
    assert state(db, conversation) == ("done", None)


def test_a_customer_writing_again_reopens_a_closed_conversation_as_new(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE, "Oi")
    workflow.take(db, conversation.id, people["ana"])
    workflow.close(db, conversation.id, people["ana"])
    again = customer_writes(sms, "11900000001", "Esqueci de perguntar uma coisa")
    assert again.id == conversation.id
    assert state(db, conversation) == ("new", None)
    changes = [e.change for e in queries.timeline(db, conversation, people["sofia"]).entries if e.kind == "event"]
    assert changes == ["taken", "closed", "reopened_by_customer"]


def test_a_reply_from_a_number_that_became_a_contact_links_its_conversation(db, sms, people, customer_writes):
    from contact_center.contacts.service import create_contact

    conversation = customer_writes(sms, PHONE, "Oi")
    workflow.take(db, conversation.id, people["ana"])
    assert conversation.contact_id is None
    contact = create_contact(db, {"name": "Rita Campos", "mobile": "(11) 90000-0001"})
    again = customer_writes(sms, "5511900000001", "Sou eu de novo")
    assert again.id == conversation.id and again.contact_id == contact.id
    assert state(db, conversation) == ("assigned", "ana")  # an open conversation stays with its operator
    assert again.unread_count == 2


def test_marking_read_zeroes_the_unread_count(db, sms, people, customer_writes):
    customer_writes(sms, PHONE, "1")
    conversation = customer_writes(sms, PHONE, "2")
    assert conversation.unread_count == 2
    assert queries.unread_total(db, people["ana"]) == 2
    workflow.mark_read(db, conversation.id, people["ana"])
    assert db.get(Conversation, conversation.id).unread_count == 0
    assert queries.unread_total(db, people["ana"]) == 0


def test_changes_are_announced_only_after_commit(db, runtime, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    db.commit()
    seen = []
    unsubscribe = runtime.events.subscribe(lambda number, event: seen.append(event))
    try:
        workflow.take(db, conversation.id, people["ana"])
        assert seen == []
        db.commit()
    finally:
        unsubscribe()
    assert [(e.kind, e.data["change"], e.data["assignee_id"]) for e in seen] == [
        ("conversation.updated", "taken", people["ana"].id)]


# --- writing ------------------------------------------------------------------------------------------

def test_writing_in_a_new_conversation_takes_it(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    message = workflow.send(db, conversation.id, people["ana"], "Bom dia! Como posso ajudar?")
    assert (message.status, message.origin, message.author_id) == ("queued", "composer", people["ana"].id)
    assert message.conversation_id == conversation.id
    assert state(db, conversation) == ("assigned", "ana")


def test_only_the_assignee_or_a_supervisor_writes_in_an_assigned_conversation(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.take(db, conversation.id, people["ana"])
    with pytest.raises(PermissionDenied, match="Ana Lima is handling"):
        workflow.send(db, conversation.id, people["bruno"], "Posso ajudar?")
    assert db.scalar(select(func.count()).select_from(Message).where(Message.direction == "out")) == 0

    message = workflow.send(db, conversation.id, people["sofia"], "Aqui é a supervisora.")
    assert message.status == "queued"
    assert state(db, conversation) == ("assigned", "ana")  # the supervisor does not take it over


def test_writing_in_a_closed_conversation_reopens_it_for_the_writer(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    workflow.close(db, conversation.id, people["ana"])
    workflow.send(db, conversation.id, people["ana"], "Só confirmando: resolvido?")
    assert state(db, conversation) == ("assigned", "ana")
    assert [kind for kind, *_ in events(db, conversation)] == ["closed", "reopened"]


def test_an_empty_message_is_refused_and_takes_nothing(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    db.commit()
    with pytest.raises(InvalidInput) as caught:
        workflow.send(db, conversation.id, people["ana"], "   ")
    assert caught.value.field == "body"
    db.rollback()  # the request boundary does this
    assert state(db, conversation) == ("new", None)


def test_answering_through_another_channel_lands_in_one_timeline(db, sms, people, customer_writes):
    from contact_center.channels import service as channels

    other = channels.create_channel(db, name="SMS Cobrança", provider="kolmeya_sandbox", credentials={"token": "t"})
    conversation = customer_writes(sms, PHONE, "Quero negociar")
    workflow.take(db, conversation.id, people["ana"])
    message = workflow.send(db, conversation.id, people["ana"], "Respondo pelo outro número", channel_id=other.id)
    assert message.channel_id == other.id and message.conversation_id != conversation.id
    elsewhere = db.get(Conversation, message.conversation_id)
    assert (elsewhere.status, elsewhere.assignee_id) == ("assigned", people["ana"].id)

    entries = [e for e in queries.timeline(db, conversation, people["ana"]).entries if e.kind == "message"]
    assert [(e.message.body, e.channel_name) for e in entries] == [
        ("Quero negociar", "SMS Principal"), ("Respondo pelo outro número", "SMS Cobrança")]


def test_a_deactivated_channel_is_refused(db, sms, people, customer_writes):
    from contact_center.channels import service as channels

    other = channels.create_channel(db, name="SMS Antigo", provider="kolmeya_sandbox", credentials={"token": "t"})
    other.active = False
    conversation = customer_writes(sms, PHONE)
    with pytest.raises(InvalidInput, match="deactivated"):
        workflow.send(db, conversation.id, people["ana"], "Oi", channel_id=other.id)


# --- the customer ---------------------------------------------------------------------------------------

def test_linking_a_contact_reaches_the_messages_and_the_same_phone_elsewhere(db, sms, people, customer_writes):
    from contact_center.channels import service as channels
    from contact_center.contacts import service as contacts

    other = channels.create_channel(db, name="SMS Cobrança", provider="kolmeya_sandbox", credentials={"token": "t"})
    conversation = customer_writes(sms, PHONE, "Oi, sou a Maria")
    elsewhere = customer_writes(other, "5511900000001", "Oi de novo")
    maria = contacts.create_contact(db, {"name": "Maria Souza", "email": "maria@example.com"})
    assert conversation.contact_id is None

    workflow.link_contact(db, conversation.id, people["ana"], maria.id)

    db.refresh(elsewhere)
    assert conversation.contact_id == maria.id and elsewhere.contact_id == maria.id
    assert set(db.scalars(select(Message.contact_id))) == {maria.id}
    assert events(db, conversation) == [("contact_linked", "ana", None)]
    assert queries.list_conversations(db, people["ana"], queries.InboxFilter(search="maria")).total == 2


def test_creating_a_contact_from_a_conversation_uses_its_number(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    contact = workflow.create_contact(db, conversation.id, people["ana"], {"name": "Maria Souza"})
    assert contact.mobile_e164 == "+5511900000001"
    assert db.get(Conversation, conversation.id).contact_id == contact.id

    workflow.update_contact(db, conversation.id, people["ana"], {"name": "Maria Souza Lima"})
    assert contact.name == "Maria Souza Lima"


def test_bad_contact_input_changes_nothing(db, sms, people, customer_writes):
    conversation = customer_writes(sms, PHONE)
    with pytest.raises(InvalidInput) as caught:
        workflow.create_contact(db, conversation.id, people["ana"], {"name": "Maria", "mobile": "12"})
    assert caught.value.field == "mobile"
    assert db.get(Conversation, conversation.id).contact_id is None
    with pytest.raises(InvalidInput, match="no contact yet"):
        workflow.update_contact(db, conversation.id, people["ana"], {"name": "X"})


def test_quick_replies_are_validated(db, people):
    reply = workflow.save_quick_reply(db, people["sofia"], title="Horário", body="Atendemos das 8h às 18h.")
    assert [r.title for r in workflow.list_quick_replies(db)] == ["Horário"]
    with pytest.raises(InvalidInput, match="title"):
        workflow.save_quick_reply(db, people["sofia"], title=" ", body="x")
    from contact_center.errors import Conflict

    with pytest.raises(Conflict):
        workflow.save_quick_reply(db, people["sofia"], title="Horário", body="outro")
    workflow.save_quick_reply(db, people["sofia"], title="Horário", body="8h às 20h", quick_reply_id=reply.id)
    assert reply.body == "8h às 20h"
