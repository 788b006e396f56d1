from __future__ import annotations

from sqlalchemy import select

from contact_center.audit.models import AuditEntry


def test_crud_and_preview_for_a_contact(client, supervisor_headers, db):
    h = supervisor_headers
    contact = client.post("/api/contacts", json={"name": "João Silva", "mobile": "11 90000-0001"}, headers=h).json()
    created = client.post("/api/templates", json={"name": "Cobrança", "body": "Olá {{ contact.first_name }}, tudo bem?"},
                          headers=h)
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]

    preview = client.post(f"/api/templates/{template_id}/preview", json={"contact_id": contact["id"]}, headers=h)
    assert preview.status_code == 200
    assert preview.json()["text"] == "Olá João, tudo bem?"
    assert preview.json()["segments"]["encoding"] == "UCS-2"  # "á" is not GSM-7

    sample = client.post(f"/api/templates/{template_id}/preview", json={}, headers=h).json()
    assert sample["text"] == "Olá Maria, tudo bem?"

    updated = client.patch(f"/api/templates/{template_id}", json={"body": "Oi {{ contact.name }}"}, headers=h)
    assert updated.status_code == 200 and updated.json()["body"] == "Oi {{ contact.name }}"
    assert client.delete(f"/api/templates/{template_id}", headers=h).status_code == 204
    actions = [e.action for e in db.scalars(select(AuditEntry).where(AuditEntry.subject_type == "template")
                                            .order_by(AuditEntry.id))]
    assert actions == ["template.create", "template.update", "template.delete"]


def test_unknown_variable_is_refused_at_save_time_with_its_line(client, supervisor_headers):
    response = client.post("/api/templates", json={"name": "T", "body": "Olá\n{{ object.proxima_parcela_data }}"},
                           headers=supervisor_headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "body"
    assert error["message"].startswith("line 2: unknown variable 'object.proxima_parcela_data'")
    assert client.get("/api/templates", headers=supervisor_headers).json() == []


def test_unsafe_template_is_refused(client, supervisor_headers):
    response = client.post("/api/templates", json={"name": "T", "body": "{{ ''.__class__.__mro__ }}"},
                           headers=supervisor_headers)
    assert response.status_code == 422
    assert "refused" in response.json()["error"]["message"]


def test_agents_read_but_do_not_write_templates(client, agent_headers, supervisor_headers):
    assert client.post("/api/templates", json={"name": "T", "body": "Oi"}, headers=supervisor_headers).status_code == 201
    listed = client.get("/api/templates", headers=agent_headers)
    assert listed.status_code == 200 and [t["name"] for t in listed.json()] == ["T"]
    assert client.post("/api/templates", json={"name": "U", "body": "Oi"}, headers=agent_headers).status_code == 403


def test_duplicate_name_is_409(client, supervisor_headers):
    client.post("/api/templates", json={"name": "T", "body": "Oi"}, headers=supervisor_headers)
    response = client.post("/api/templates", json={"name": "T", "body": "Olá"}, headers=supervisor_headers)
    assert response.status_code == 409
