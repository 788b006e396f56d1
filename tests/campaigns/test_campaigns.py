"""Campaigns through the REST API and the real Kolmeya sandbox: created at once and built by a job,
checked once before anything is stored, previewed with what will be skipped and why, started,
paused, resumed and cancelled with the counts the sandbox's ledger confirms, released only inside
the send window and the throughput cap, and listed recipient by recipient (JSON and CSV)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from contact_center.audit.models import AuditEntry
from contact_center.campaigns import service as campaigns
from contact_center.campaigns.models import Campaign
from contact_center.messaging.models import Message
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.translations import say_stored

ANY_TIME = {"days": {day: {"start": "00:00", "end": "24:00"} for day in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                                         "sun")}}
BODY = "Oi {{ contact.first_name }}, sua parcela vence amanhã."


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", status_delay_seconds=30) as server:
        yield server


@pytest.fixture
def channel(client, admin_headers, sandbox):
    return client.post("/api/channels", json={
        "name": "SMS SANDBOX", "provider": "kolmeya_sandbox", "credentials": {"token": "sandbox-token"},
        "settings": {"base_url": sandbox.base_url, "price_per_segment": "0.07"}}, headers=admin_headers).json()


@pytest.fixture
def audience(client, admin_headers):
    """Five customers who can be sent to, one who opted out, one without a phone."""
    for i, name in enumerate(["Ana Lima", "Bruno Sá", "Carla Dias", "Diego Reis", "Elisa Melo"], start=1):
        client.post("/api/contacts", json={"name": name, "mobile": f"11 90000-000{i}"}, headers=admin_headers)
    client.post("/api/contacts", json={"name": "Fábio Opt", "mobile": "11 90000-0009", "opt_out_sms": True},
                headers=admin_headers)
    client.post("/api/contacts", json={"name": "Gil Sem Telefone"}, headers=admin_headers)


def create(client, headers, channel, **overrides):
    body = {"name": "Cobrança dezembro", "channel_id": channel["id"], "body": BODY, "search": "",
            "send_window": ANY_TIME} | overrides
    return client.post("/api/campaigns", json=body, headers=headers)


def get(client, headers, campaign_id: int) -> dict:
    return client.get(f"/api/campaigns/{campaign_id}", headers=headers).json()


def ledger_texts(sandbox) -> list[str]:
    return sorted(m["text"] for m in sandbox.ledger()["messages"])


def test_a_campaign_is_built_by_a_job_then_waits_to_be_started(client, admin_headers, channel, sandbox, audience):
    answer = create(client, admin_headers, channel)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "building"
    campaign = get(client, admin_headers, answer.json()["id"])
    assert campaign["status"] == "ready"
    assert (campaign["total"], campaign["skipped"]) == (6, 1)  # the opted-out one is stored, blocked
    assert campaign["skip_reasons"] == {"opted_out": 1, "no_number": 1}
    assert campaign["progress"]["scheduled"] == 5 and campaign["progress"]["blocked"] == 1
    assert sandbox.ledger()["messages"] == []  # nothing goes before it is started

    started = client.post(f"/api/campaigns/{campaign['id']}/start", headers=admin_headers)
    assert started.status_code == 200, started.text
    campaign = get(client, admin_headers, campaign["id"])
    assert campaign["status"] == "completed" and campaign["finished_at"] is not None
    assert campaign["progress"]["sent"] == 5
    assert ledger_texts(sandbox) == sorted(f"Oi {n}, sua parcela vence amanhã." for n in
                                           ("Ana", "Bruno", "Carla", "Diego", "Elisa"))


def test_an_unknown_variable_refuses_the_campaign_once_naming_it(client, admin_headers, channel, db, audience):
    answer = create(client, admin_headers, channel, body="Oi {{ contact.nome }}")
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "body"
    assert "unknown variable 'contact.nome'" in answer.json()["error"]["message"]
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0
    assert db.scalar(select(func.count()).select_from(Message)) == 0


def test_the_preview_renders_the_first_messages_and_counts_the_skipped_by_reason(client, admin_headers, channel,
                                                                                 audience):
    csv_text = ("telefone;nome\n11 90000-0001;Ana\n(11) 90000-0001;Ana de novo\nnão é telefone;Bruno\n"
                "11 90000-0009;Fábio\n;Sem número\n11 90000-0003;Carla\n")
    answer = client.post("/api/campaigns/preview", headers=admin_headers, json={
        "name": "Prévia", "channel_id": channel["id"], "body": BODY, "csv": csv_text})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["skipped"] == {"opted_out": 1, "no_number": 1, "invalid_number": 1, "duplicate": 1}
    assert {e["kind"] for e in preview["skip_examples"]} == {"no_number", "invalid_number", "duplicate"}
    assert [p["text"] for p in preview["preview"]] == ["Oi Ana, sua parcela vence amanhã.",  # Ana Lima's number
                                                       "Oi Fábio, sua parcela vence amanhã.",
                                                       "Oi Carla, sua parcela vence amanhã."]
    assert preview["sendable"] == 2 and preview["segments"] == 2
    assert preview["estimated_cost"] == "0.14" and preview["enough_balance"] is True


def test_pause_takes_back_what_was_not_handed_over_and_cancel_says_how_many(client, admin_headers, channel,
                                                                            sandbox, audience, db):
    # Two a minute: the first pump releases two, the rest wait for the next minute.
    campaign = create(client, admin_headers, channel, per_minute=2, start=True).json()
    assert len(sandbox.ledger()["messages"]) == 2
    state = get(client, admin_headers, campaign["id"])
    assert state["status"] == "running" and "2 mensagens por minuto" in state["waiting_reason"]
    english = client.get(f"/api/campaigns/{campaign['id']}", headers={**admin_headers, "Accept-Language": "en"})
    assert english.json()["waiting_reason"] == "limit of 2 messages a minute"
    assert client.post(f"/api/campaigns/{campaign['id']}/pause", headers=admin_headers).status_code == 200
    assert client.post(f"/api/campaigns/{campaign['id']}/pause", headers=admin_headers).status_code == 409
    with_clock = datetime.now(UTC) + timedelta(minutes=5)
    assert campaigns.pump(db, campaign["id"], now=with_clock).released == []  # paused: nothing more goes
    db.rollback()
    assert client.post(f"/api/campaigns/{campaign['id']}/resume", headers=admin_headers).status_code == 200
    cancelled = client.post(f"/api/campaigns/{campaign['id']}/cancel", headers=admin_headers).json()
    assert (cancelled["status"], cancelled["cancelled"]) == ("cancelled", 3)
    assert cancelled["progress"]["cancelled"] == 3 and cancelled["progress"]["sent"] == 2
    assert len(sandbox.ledger()["messages"]) == 2  # the provider got what it got, once
    again = client.post(f"/api/campaigns/{campaign['id']}/resume", headers=admin_headers)
    assert again.status_code == 409 and "cancelada" in again.json()["error"]["message"]
    actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "campaign")
                              .order_by(AuditEntry.id)))
    assert actions == ["campaign.create", "campaign.pause", "campaign.resume", "campaign.cancel"]


def test_a_capped_campaign_completes_once_its_last_share_is_sent(client, admin_headers, channel, sandbox, audience):
    # Its five fit in one minute's cap: nothing is left to wait for, so it must not wait out the minute.
    campaign = create(client, admin_headers, channel, per_minute=5, start=True).json()
    state = get(client, admin_headers, campaign["id"])
    assert (state["status"], state["waiting_reason"]) == ("completed", None)
    assert state["progress"]["sent"] == 5 and len(sandbox.ledger()["messages"]) == 5


def brasilia(day: datetime, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(hours=3)  # UTC-3, no DST


def test_outside_the_send_window_nothing_goes_and_it_resumes_by_itself_inside(client, admin_headers, channel,
                                                                              sandbox, audience, db):
    # A Friday a few days ahead: the campaign may begin at 19:00 there, in the default window.
    friday = datetime.now(UTC) + timedelta(days=3)
    friday += timedelta(days=(4 - friday.weekday()) % 7)
    campaign = create(client, admin_headers, channel, send_window=None,
                      starts_at=brasilia(friday, 19).isoformat()).json()
    assert client.post(f"/api/campaigns/{campaign['id']}/start", headers=admin_headers).status_code == 200
    assert sandbox.ledger()["messages"] == []
    assert get(client, admin_headers, campaign["id"])["waiting_reason"].startswith("agendada: começa")

    def pump_at(at: datetime) -> int:
        released = len(campaigns.pump(db, campaign["id"], now=at).released)
        db.flush()
        return released

    saturday = friday + timedelta(days=1)
    assert pump_at(brasilia(friday, 20)) == 0  # 20:00: the window has closed
    assert say_stored(db.get(Campaign, campaign["id"]).waiting_reason, None) == \
        f"fora da janela de envio: retoma sábado {saturday:%d/%m} às 08:00"
    assert say_stored(db.get(Campaign, campaign["id"]).waiting_reason, "en") == \
        f"outside the send window: resumes Saturday {saturday:%d/%m} at 08:00"
    assert pump_at(brasilia(saturday, 7)) == 0
    assert pump_at(brasilia(saturday, 8)) == 5  # it opens: everything waiting goes
    assert db.get(Campaign, campaign["id"]).waiting_reason is None
    db.execute(update(Message).where(Message.campaign_id == campaign["id"], Message.status == "queued")
               .values(status="sent"))
    pump_at(brasilia(saturday, 15))  # the window has closed again, but nothing is left to send
    assert db.get(Campaign, campaign["id"]).status == "completed"
    db.rollback()


def test_recipients_are_listed_by_state_and_exported_as_csv(client, admin_headers, channel, sandbox, audience,
                                                            agent_headers):
    campaign = create(client, admin_headers, channel, start=True).json()
    blocked = client.get(f"/api/campaigns/{campaign['id']}/recipients", params={"status": "blocked"},
                         headers=admin_headers).json()
    assert [(r["phone_e164"], r["status"]) for r in blocked] == [("+5511900000009", "blocked")]
    assert "opted out" in blocked[0]["status_reason"]
    exported = client.get(f"/api/campaigns/{campaign['id']}/recipients.csv", headers=admin_headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"sent", "blocked"}
    assert client.get(f"/api/campaigns/{campaign['id']}/recipients", headers=agent_headers).status_code == 403


def test_a_build_that_stopped_starts_over_without_storing_anyone_twice(client, admin_headers, channel, audience, db,
                                                                       session_factory, settings):
    campaign = create(client, admin_headers, channel).json()
    with session_factory() as session:  # as if the worker died in the middle of the build
        session.get(Campaign, campaign["id"]).status = "building"
        session.commit()
    assert campaigns.build(session_factory, settings, campaign["id"]) is False  # built: ready, not started
    assert db.scalar(select(func.count()).where(Message.campaign_id == campaign["id"])) == 6
    assert get(client, admin_headers, campaign["id"])["status"] == "ready"


def test_a_bad_send_window_or_cap_is_refused_naming_the_field(client, admin_headers, channel, db):
    bad_day = create(client, admin_headers, channel, send_window={"days": {"dom": {"start": "08:00", "end": "12:00"}}})
    assert bad_day.status_code == 422 and bad_day.json()["error"]["field"] == "send_window.days"
    backwards = create(client, admin_headers, channel,
                       send_window={"days": {"mon": {"start": "18:00", "end": "08:00"}}})
    assert backwards.status_code == 422 and "ends (08:00) before it starts (18:00)" in backwards.text
    cap = create(client, admin_headers, channel, per_minute=0)
    assert cap.status_code == 422 and cap.json()["error"]["field"] == "per_minute"
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_tag_is_an_audience_for_campaigns_and_bulk_sends(client, admin_headers, channel, sandbox):
    for i, (name, tags) in enumerate([("Ana Lima", ["Inadimplente"]), ("Bruno Sá", ["inadimplente", "VIP"]),
                                      ("Carla Dias", ["VIP"]), ("Diego Reis", [])], start=1):
        client.post("/api/contacts", json={"name": name, "mobile": f"11 90000-000{i}", "tags": tags},
                    headers=admin_headers)

    answer = create(client, admin_headers, channel, search=None, tag="INADIMPLENTE", start=True)
    assert answer.status_code == 202, answer.text
    campaign = get(client, admin_headers, answer.json()["id"])
    assert campaign["status"] == "completed" and campaign["total"] == 2
    assert ledger_texts(sandbox) == ["Oi Ana, sua parcela vence amanhã.", "Oi Bruno, sua parcela vence amanhã."]

    preview = client.post("/api/sms/bulk", json={"channel_id": channel["id"], "body": BODY, "tag": "vip"},
                          headers=admin_headers)
    assert preview.status_code == 200, preview.text
    assert [p["to"] for p in preview.json()["preview"]] == ["+5511900000002", "+5511900000003"]

    nobody = create(client, admin_headers, channel, search=None, tag="ninguém tem")
    assert get(client, admin_headers, nobody.json()["id"])["total"] == 0
    for bad, fragment in ((create(client, admin_headers, channel, tag="VIP"), "exactly one"),
                          (create(client, admin_headers, channel, search=None, tag="a;b"), "vírgula")):
        assert bad.status_code == 422 and fragment in bad.json()["error"]["message"], bad.text
