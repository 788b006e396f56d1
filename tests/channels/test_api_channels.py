from __future__ import annotations

import logging

from sqlalchemy import select

from contact_center.audit.models import AuditEntry


def create(client, headers, **overrides):
    body = {"name": "SMS Kolmeya", "provider": "kolmeya", "credentials": {"token": "Bearer tok-very-secret-123"},
            "settings": {"segment_id": 109}} | overrides
    return client.post("/api/channels", json=body, headers=headers)


def test_credentials_are_write_only(client, admin_headers, agent_headers, caplog):
    with caplog.at_level(logging.DEBUG):
        created = create(client, admin_headers)
    assert created.status_code == 201, created.text
    assert "tok-very-secret-123" not in created.text
    assert created.json()["credentials_set"] == ["token"]
    channel_id = created.json()["id"]
    for response in (client.get("/api/channels", headers=agent_headers),
                     client.get(f"/api/channels/{channel_id}", headers=agent_headers)):
        assert response.status_code == 200
        assert "tok-very-secret-123" not in response.text
    assert "tok-very-secret-123" not in caplog.text


def test_audit_records_the_change_without_the_secret(client, admin_headers, db):
    channel_id = create(client, admin_headers).json()["id"]
    client.patch(f"/api/channels/{channel_id}", json={"credentials": {"token": "other-secret-456"}}, headers=admin_headers)
    entries = list(db.scalars(select(AuditEntry).where(AuditEntry.subject_type == "channel").order_by(AuditEntry.id)))
    assert [e.action for e in entries] == ["channel.create", "channel.update"]
    assert entries[1].detail["credentials_changed"] == ["token"]
    assert "secret" not in str([e.detail for e in entries]).replace("webhook_jwt_secret", "")


def test_only_admins_manage_channels(client, supervisor_headers):
    assert create(client, supervisor_headers).status_code == 403


def test_bad_settings_and_credentials_are_named(client, admin_headers):
    bad_segment = create(client, admin_headers, settings={"segment_id": "abc"})
    assert bad_segment.status_code == 422 and bad_segment.json()["error"]["field"] == "settings.segment_id"
    unknown = create(client, admin_headers, settings={"segmento": 1})
    assert unknown.status_code == 422 and "segmento" in unknown.json()["error"]["message"]
    no_token = create(client, admin_headers, credentials={})
    assert no_token.status_code == 422 and no_token.json()["error"]["field"] == "credentials.token"
    provider = create(client, admin_headers, provider="twilio")
    assert provider.status_code == 422 and "kolmeya" in provider.json()["error"]["message"]
    assert client.get("/api/channels", headers=admin_headers).json() == []


def test_webhook_urls_are_for_admins_and_rotate(client, admin_headers, agent_headers):
    channel_id = create(client, admin_headers).json()["id"]
    urls = client.get(f"/api/channels/{channel_id}/webhooks", headers=admin_headers).json()
    assert urls["reply"].startswith("http://127.0.0.1:8000/kolmeya/webhook/reply?token=")
    assert client.get(f"/api/channels/{channel_id}/webhooks", headers=agent_headers).status_code == 403
    rotated = client.post(f"/api/channels/{channel_id}/webhooks/rotate", headers=admin_headers).json()
    assert rotated["reply"] != urls["reply"]
    old_token = urls["status"].split("token=")[1]
    assert client.post(f"/kolmeya/webhook/status?token={old_token}", json={}).status_code == 401


def test_status_reports_an_unreachable_provider_clearly(client, admin_headers):
    channel_id = create(client, admin_headers, settings={"base_url": "http://127.0.0.1:9/api/v1",
                                                          "timeout_seconds": 1}).json()["id"]
    status = client.get(f"/api/channels/{channel_id}/status", headers=admin_headers)
    assert status.status_code == 200
    body = status.json()
    assert body["ok"] is False and body["balance"] is None and body["error"]
    assert "tok-very-secret-123" not in status.text


def test_a_sandbox_channel_cannot_be_pointed_at_the_real_kolmeya(client, admin_headers, db):
    real = create(client, admin_headers, name="SMS SANDBOX", provider="kolmeya_sandbox",
                  settings={"base_url": "https://kolmeya.com.br/api/v1"})
    assert real.status_code == 422 and real.json()["error"]["field"] == "settings.base_url"
    assert client.get("/api/channels", headers=admin_headers).json() == []
    default = create(client, admin_headers, name="SMS SANDBOX", provider="kolmeya_sandbox", settings={})
    assert default.status_code == 201, default.text
    from contact_center.channels.service import build_provider, get_channel

    provider = build_provider(get_channel(db, default.json()["id"]), None)
    assert provider.client.base_url == "http://127.0.0.1:8900/api/v1"  # the local sandbox, not kolmeya.com.br


def test_a_whatsapp_channel_shows_its_callback_url_and_verify_token_and_one_number_is_one_channel(
        client, admin_headers, agent_headers):
    body = {"name": "WhatsApp", "provider": "whatsapp_cloud",
            "credentials": {"access_token": "EAAG-fictitious-token", "app_secret": "fictitious-secret"},
            "settings": {"phone_number_id": "100000000000001", "waba_id": "200000000000001"}}
    created = client.post("/api/channels", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert (created.json()["kind"], created.json()["sandbox"]) == ("whatsapp", False)
    assert sorted(created.json()["credentials_set"]) == ["access_token", "app_secret", "verify_token"]
    assert "fictitious" not in created.text
    urls = client.get(f"/api/channels/{created.json()['id']}/webhooks", headers=admin_headers).json()
    assert urls["callback"].endswith("/whatsapp/webhook") and "token=" not in urls["callback"]
    assert len(urls["verify_token"]) >= 24
    assert client.get(f"/api/channels/{created.json()['id']}/webhooks", headers=agent_headers).status_code == 403
    again = client.post("/api/channels", json={**body, "name": "WhatsApp 2"}, headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["error"]["field"] == "settings.phone_number_id"
    bad = client.post("/api/channels", json={**body, "name": "WhatsApp 3",
                                             "settings": {"phone_number_id": "abc", "waba_id": "1"}},
                      headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "settings.phone_number_id"
    missing = client.post("/api/channels", json={**body, "name": "WhatsApp 4", "credentials": {"access_token": "x"}},
                          headers=admin_headers)
    assert missing.status_code == 422 and "app_secret" in missing.json()["error"]["message"]
