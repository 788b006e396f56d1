"""The template budget through every API path that compiles or renders a template: a hostile
template is a 422 naming the limit, answered fast, and nothing is stored."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from contact_center.audit.models import AuditEntry
from contact_center.messaging.models import Message
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.settings import Settings
from contact_center.templates.models import Template
from tests.templates.hostile import CPU, CPU_SECONDS, HOSTILE_PARAMS, SAMPLE_PARAMS, SIZE

# A refusal costs the server well under a second of CPU, whatever stopped it; the wall clock is
# bounded loosely too, since on a busy machine the same CPU second can take several to arrive.
FAST_CPU, FAST_WALL = 0.9, 3.0


def clock() -> tuple[float, float]:
    """Now on the wall clock and on this process's CPU clock (the app runs in the test's process)."""
    return time.perf_counter(), time.process_time()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="test-secret-key-0123456789", webhook_writer_process=False,
                    template_cpu_seconds=CPU_SECONDS, _env_file=None)


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", status_delay_seconds=30) as server:
        yield server


@pytest.fixture
def channel(client, admin_headers, sandbox):
    return client.post("/api/channels", json={
        "name": "SMS SANDBOX", "provider": "kolmeya_sandbox", "credentials": {"token": "sandbox-token"},
        "settings": {"base_url": sandbox.base_url, "price_per_segment": "0.07"}}, headers=admin_headers).json()


def refused(response, words: str, started: tuple[float, float]) -> None:
    wall, cpu = (now - then for now, then in zip(clock(), started))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "body" and "refused" in error["message"] and words in error["message"], error
    assert cpu < FAST_CPU, f"answered after {cpu:.2f} s of CPU"
    assert wall < FAST_WALL, f"answered after {wall:.2f} s"


def stored_template(db, body: str) -> int:
    """A template stored before templates had a budget (the API refuses to store these now)."""
    template = Template(name="antigo", body=body, description=None)
    db.add(template)
    db.commit()
    return template.id


@pytest.mark.parametrize("source,limit,words", HOSTILE_PARAMS)
def test_create_refuses_and_stores_nothing(client, supervisor_headers, db, source, limit, words):
    started = clock()
    response = client.post("/api/templates", json={"name": "T", "body": source}, headers=supervisor_headers)
    refused(response, words, started)
    assert client.get("/api/templates", headers=supervisor_headers).json() == []
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "template.create")) == 0


@pytest.mark.parametrize("source,limit,words", HOSTILE_PARAMS)
def test_an_agents_preview_is_refused(client, supervisor_headers, agent_headers, source, limit, words):
    template = client.post("/api/templates", json={"name": "T", "body": "Oi {{ contact.first_name }}"},
                           headers=supervisor_headers).json()
    started = clock()
    response = client.post(f"/api/templates/{template['id']}/preview", json={"body": source}, headers=agent_headers)
    refused(response, words, started)


@pytest.mark.parametrize("source,limit,words", SAMPLE_PARAMS)
def test_update_refuses_and_keeps_the_body(client, supervisor_headers, source, limit, words):
    template = client.post("/api/templates", json={"name": "T", "body": "Oi {{ contact.first_name }}"},
                           headers=supervisor_headers).json()
    started = clock()
    response = client.patch(f"/api/templates/{template['id']}", json={"body": source}, headers=supervisor_headers)
    refused(response, words, started)
    assert client.get(f"/api/templates/{template['id']}", headers=supervisor_headers).json()["body"] == \
        "Oi {{ contact.first_name }}"


@pytest.mark.parametrize("confirm", [False, True], ids=["preview", "confirm"])
@pytest.mark.parametrize("source,limit,words", SAMPLE_PARAMS)
def test_bulk_send_refuses_the_body_once(client, admin_headers, channel, db, sandbox, source, limit, words, confirm):
    for i in range(3):
        client.post("/api/contacts", json={"name": f"Cliente {i}", "mobile": f"11 90000-000{i}"}, headers=admin_headers)
    started = clock()
    response = client.post("/api/sms/bulk", json={"body": source, "search": "", "confirm": confirm},
                           headers=admin_headers)
    refused(response, words, started)  # once for the body, not once per recipient
    assert db.scalar(select(func.count()).select_from(Message)) == 0
    assert sandbox.ledger()["messages"] == []


@pytest.mark.parametrize("source,limit,words", SAMPLE_PARAMS)
def test_a_stored_template_is_refused_by_the_composer_and_the_api(client, admin_headers, agent_headers, channel, db,
                                                                  source, limit, words):
    contact = client.post("/api/contacts", json={"name": "João Silva", "mobile": "11 90000-0001"},
                          headers=admin_headers).json()
    sent = client.post("/api/sms", json={"contact_id": contact["id"], "body": "Olá"}, headers=admin_headers).json()
    template_id = stored_template(db, source)

    started = clock()
    response = client.post(f"/api/conversations/{sent['conversation_id']}/render-template",
                           json={"template_id": template_id}, headers=admin_headers)
    refused(response, words, started)

    started = clock()
    response = client.post("/api/sms", json={"contact_id": contact["id"], "template_id": template_id},
                           headers=admin_headers)
    refused(response, words, started)
    assert db.scalar(select(func.count()).select_from(Message)) == 1  # only the first "Olá"

    started = clock()
    response = client.post(f"/api/templates/{template_id}/preview", json={}, headers=agent_headers)
    refused(response, words, started)


def test_one_recipients_data_rejects_only_that_recipient(client, admin_headers, channel, sandbox):
    """Within budget for the sample and most contacts; over it for the one with long notes."""
    ids = {}
    for name, notes in (("Ana Lima", ""), ("Bruno Dias", "x" * 3000), ("Carla Souza", "curta")):
        ids[name] = client.post("/api/contacts", json={"name": name, "mobile": f"11 90000-00{len(ids)}1",
                                                        "notes": notes}, headers=admin_headers).json()["id"]
    body = ("{% for a in contact.notes %}{% for b in contact.notes %}{% endfor %}{% endfor %}"
            "Oi {{ contact.first_name }}, regularize hoje.")
    request = {"name": "Cobrança", "body": body, "search": ""}

    plan = client.post("/api/sms/bulk", json=request, headers=admin_headers)
    assert plan.status_code == 200, plan.text
    assert (plan.json()["recipients"], plan.json()["sendable"]) == (3, 2)
    [rejected] = plan.json()["rejected"]
    assert rejected["where"] == f"contact {ids['Bruno Dias']}" and CPU in rejected["reason"]

    started = client.post("/api/sms/bulk", json=request | {"confirm": True}, headers=admin_headers).json()
    progress = client.get(f"/api/campaigns/{started['campaign_id']}", headers=admin_headers).json()
    assert progress["by_status"] == {"sent": 2}
    assert sorted(m["text"] for m in sandbox.ledger()["messages"]) == [
        "Oi Ana, regularize hoje.", "Oi Carla, regularize hoje."]


def test_a_recipient_whose_data_is_too_long_is_rejected_with_the_size_limit(client, admin_headers, channel):
    client.post("/api/contacts", json={"name": "Ana", "mobile": "11 90000-0001", "notes": "x" * 10_000},
                headers=admin_headers)
    client.post("/api/contacts", json={"name": "Bia", "mobile": "11 90000-0002", "notes": "ok"}, headers=admin_headers)
    plan = client.post("/api/sms/bulk", json={"body": "{{ contact.notes * 7 }}", "search": ""},
                       headers=admin_headers).json()
    assert plan["sendable"] == 1
    assert SIZE in plan["rejected"][0]["reason"]


class TestConfiguredLimits:
    @pytest.fixture
    def settings(self, tmp_path) -> Settings:
        return Settings(data_dir=tmp_path, secret_key="test-secret-key-0123456789", webhook_writer_process=False,
                        template_max_output_bytes=200, template_cpu_seconds=0.05, _env_file=None)

    def test_the_configured_size_limit_applies(self, client, supervisor_headers):
        fits = client.post("/api/templates", json={"name": "T", "body": "{{ 'x' * 200 }}"}, headers=supervisor_headers)
        assert fits.status_code == 201, fits.text
        response = client.post(f"/api/templates/{fits.json()['id']}/preview", json={"body": "{{ 'x' * 201 }}"},
                               headers=supervisor_headers)
        assert response.status_code == 422
        assert "size limit of 200 bytes" in response.json()["error"]["message"]

    def test_the_configured_cpu_limit_applies(self, client, supervisor_headers):
        # 0.2 to 0.4 s of work on the machines we run on: well within the default second, four times
        # and more the configured twentieth.
        body = "{% for i in range(10000) %}{% for j in range(6) %}{{ '' }}{% endfor %}{% endfor %}ok"
        response = client.post("/api/templates", json={"name": "T", "body": body}, headers=supervisor_headers)
        assert response.status_code == 422
        assert "CPU time limit of 0.05 s" in response.json()["error"]["message"]
