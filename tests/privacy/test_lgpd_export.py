"""An LGPD access request: the ZIP holds everything we keep about the contact, and only theirs."""

from __future__ import annotations

import io
import json
import zipfile

from sqlalchemy import select

from contact_center.audit.models import AuditEntry
from contact_center.messaging.models import Message


def unzip(response) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_export_holds_everything_about_the_contact_and_nothing_about_anyone_else(client, db, admin, customers):
    maria, bruno = customers["maria"], customers["bruno"]
    files = unzip(client.get(f"/api/contacts/{maria.contact_id}/export", headers=admin))
    tables = {name[:-5]: json.loads(content) for name, content in files.items() if name.endswith(".json")}

    [contact] = tables["contacts"]
    assert (contact["name"], contact["mobile_e164"], contact["email"], contact["document"]) == (
        maria.name, maria.e164, maria.email, maria.cpf)
    assert {(i["kind"], i["value"]) for i in tables["contact_identifiers"]} >= {("wa_id", maria.e164[1:])}
    theirs = set(db.scalars(select(Message.id).where(Message.contact_id == maria.contact_id)))
    assert {m["id"] for m in tables["messages"]} == theirs and len(theirs) == 5  # SMS, reply, WhatsApp ×2, campaign
    assert {m["body"] for m in tables["messages"]} >= set(maria.texts[:3])
    assert {c["id"] for c in tables["conversations"]} == set(maria.conversation_ids)
    assert [c["name"] for c in tables["campaigns"]] == ["Parcelas"] and "audience" not in tables["campaigns"][0]
    assert any(maria.texts[2] in e["payload"] for e in tables["webhook_events"])  # the raw WhatsApp callback
    assert {("contact", maria.contact_id)} <= {(e["subject_type"], e["subject_id"]) for e in tables["audit_log"]}
    assert {e["subject_id"] for e in tables["audit_log"] if e["action"] == "sms.send"} <= theirs
    [media] = [name for name in files if name.startswith("media/")]
    assert files[media].endswith(b"maria")  # their file, as kept
    assert f"contato #{maria.contact_id}" in files["LEIA-ME.txt"].decode()

    everything = b"".join(files.values()).decode("utf-8", "replace")
    leaked = [needle for needle in bruno.needles if needle in everything]
    assert leaked == []

    db.expire_all()
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "contact.data_export"))
    assert entry.subject_id == maria.contact_id and entry.detail["messages"] == 5


def test_only_admins_export_and_an_unknown_contact_is_a_clear_404(client, make_user, admin, customers):
    agent = {"Authorization": f"Bearer {make_user('ana', 'agent')[1]}"}
    assert client.get(f"/api/contacts/{customers['maria'].contact_id}/export", headers=agent).status_code == 403
    missing = client.get("/api/contacts/999999/export", headers=admin)
    assert missing.status_code == 404 and "999999" in missing.json()["error"]["message"]
