"""An LGPD erasure: none of the contact's personal data is left in any table's text (every table
of the schema is searched) or in the data directory, the other customer keeps everything, the
reports count the same messages, and the audit log says who asked and why."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import JSON, String, Text, func, select

from contact_center.audit.models import AuditEntry
from contact_center.contacts.models import Contact
from contact_center.messaging.media import store_for
from contact_center.messaging.models import Message
from contact_center.models import Base
from contact_center.translations import say_stored


def text_everywhere(db) -> dict[str, list[str]]:
    """Every text and JSON value in every table, by table (JSON as written, accents unescaped)."""
    db.expire_all()
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, (String, Text, JSON))]
        if not columns:
            continue
        values = found.setdefault(table.name, [])
        for row in db.execute(select(*columns)):
            for column, value in zip(columns, row):
                if value is not None:
                    values.append(json.dumps(value, ensure_ascii=False) if isinstance(column.type, JSON) else value)
    return found


def files_under(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def where(needles: list[str], texts: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(table, needle) for table, values in texts.items() for needle in needles
            if any(needle in value for value in values)]


def report(db) -> list[tuple]:
    """What a report counts: messages by channel, direction, status and content type."""
    db.expire_all()
    return sorted(db.execute(select(Message.channel_id, Message.direction, Message.status, Message.content_type,
                                    func.count()).group_by(Message.channel_id, Message.direction, Message.status,
                                                           Message.content_type)).all())


def test_erasure_leaves_no_personal_data_anywhere_and_reports_still_count(client, db, admin, customers, settings):
    maria, bruno = customers["maria"], customers["bruno"]
    before = text_everywhere(db)
    assert where(maria.needles, before)  # the search finds them while they are there
    brunos = where(bruno.needles, before)
    maria_file = store_for(settings).path_for(maria.media_sha, "image/png")
    assert maria_file.is_file()
    counted = report(db)

    answer = client.post(f"/api/contacts/{maria.contact_id}/erase", headers=admin,
                         json={"reason": "Pedido da titular por e-mail, protocolo LGPD-2026-0042",
                               "requested_by": f"{maria.name} (titular)"})
    assert answer.status_code == 200, answer.text
    erased = answer.json()["erased"]
    assert erased["messages"] == 5 and erased["media_files"] == 1 and erased["identifiers"] >= 1

    texts = text_everywhere(db)
    assert where(maria.needles, texts) == []
    files = files_under(Path(settings.data_dir))
    assert not maria_file.exists()
    assert [(path.name, n) for path, content in files.items() for n in maria.needles
            if n.encode() in content] == []
    assert report(db) == counted  # the same messages, channels and statuses: reports count as before

    # Bruno keeps everything: his data, his messages, his file.
    assert where(bruno.needles, texts) == brunos and {n for _, n in brunos} >= {bruno.name, bruno.e164, *bruno.texts}
    assert store_for(settings).path_for(bruno.media_sha, "image/png").is_file()

    db.expire_all()
    contact = db.get(Contact, maria.contact_id)
    assert contact.name == f"Contato apagado #{maria.contact_id}" and contact.mobile is None
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "contact.erase"))
    assert entry.subject_id == maria.contact_id and entry.actor_kind == "token"
    assert entry.detail["reason"] == "Pedido da titular por e-mail, protocolo LGPD-2026-0042"
    assert entry.detail["requested_by"] == "[apagado] (titular)"  # who asked, without bringing the name back
    redacted = db.scalars(select(AuditEntry).where(AuditEntry.redacted_at.is_not(None))).all()
    assert {e.action for e in redacted} >= {"sms.send", "whatsapp.send"}  # kept, with "to" blanked


def test_an_erasure_without_a_reason_or_requester_is_refused_and_changes_nothing(client, db, admin, customers,
                                                                                  make_user):
    maria = customers["maria"]
    agent = {"Authorization": f"Bearer {make_user('ana', 'agent')[1]}"}
    before = text_everywhere(db)
    for body, field in (({"reason": " ", "requested_by": "A titular"}, "reason"),
                        ({"reason": "Pedido por e-mail", "requested_by": ""}, "requested_by")):
        answer = client.post(f"/api/contacts/{maria.contact_id}/erase", headers=admin, json=body)
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == field and "informe" in answer.json()["error"]["message"]
    assert client.post(f"/api/contacts/{maria.contact_id}/erase", headers=agent,
                       json={"reason": "x", "requested_by": "y"}).status_code == 403
    assert text_everywhere(db) == before


def test_a_message_still_waiting_to_go_is_cancelled_not_sent_to_nobody(client, db, admin, customers):
    from contact_center.channels.models import Channel
    from contact_center.messaging.service import queue_outbound

    maria = customers["maria"]
    sms = db.scalar(select(Channel).where(Channel.name == "SMS"))
    waiting = queue_outbound(db, channel=sms, phone=maria.e164, body="Lembrete: sua parcela vence hoje",
                             origin="api")
    db.commit()  # stored queued; nothing dispatched it
    answer = client.post(f"/api/contacts/{maria.contact_id}/erase", headers=admin,
                         json={"reason": "Pedido da titular", "requested_by": "A titular"})
    assert answer.status_code == 200 and answer.json()["erased"]["cancelled"] == 1
    db.expire_all()
    message = db.get(Message, waiting.id)
    assert (message.status, message.body, message.phone_e164) == ("cancelled", "", "")
    assert say_stored(message.status_reason, "pt-BR") == "não enviada: dados do contato apagados (LGPD)"
