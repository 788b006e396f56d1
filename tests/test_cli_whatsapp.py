"""The WhatsApp commands, run as a user runs them, against the WhatsApp sandbox; and `serve` wiring
a WhatsApp sandbox channel whose customers land in the inbox."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer
from tests.live import free_port
from tests.test_cli import run_cli

ACCESS_TOKEN = "EAAGficticio0000000000000000"
APP_SECRET = "segredo-ficticio-do-app"
CUSTOMER = "+55 11 90000-0001"
WHATSAPP_SETTINGS = ("CONTACT_CENTER_WHATSAPP_ACCESS_TOKEN", "CONTACT_CENTER_WHATSAPP_APP_SECRET",
                     "CONTACT_CENTER_WHATSAPP_PHONE_NUMBER_ID", "CONTACT_CENTER_WHATSAPP_WABA_ID")


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", app_secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def workdir(tmp_path, sandbox):
    created = run_cli("channels", "create", "WhatsApp", "--provider", "whatsapp_sandbox",
                      "-c", "access_token=sandbox-token", "-c", f"app_secret={APP_SECRET}",
                      "-s", f"phone_number_id={sandbox.phone_number_id}", "-s", f"waba_id={sandbox.waba_id}",
                      "-s", f"base_url={sandbox.base_url}", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    return tmp_path


def test_create_prints_the_callback_url_and_verify_token_and_list_never_shows_it(tmp_path):
    created = run_cli("channels", "create", "WhatsApp Vendas", "--provider", "whatsapp_cloud",
                      "-c", f"access_token={ACCESS_TOKEN}", "-c", f"app_secret={APP_SECRET}",
                      "-s", "phone_number_id=100000000000011", "-s", "waba_id=100000000000012", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "callback webhook: http://127.0.0.1:8000/whatsapp/webhook" in created.stdout
    verify_token = re.search(r"verify token: (\S+)", created.stdout).group(1)
    assert len(verify_token) >= 24  # generated, as none was given
    assert ACCESS_TOKEN not in created.stdout + created.stderr
    assert APP_SECRET not in created.stdout + created.stderr

    webhooks = run_cli("channels", "webhooks", "WhatsApp Vendas", data_dir=tmp_path)
    assert webhooks.returncode == 0, webhooks.stderr
    assert f"verify token: {verify_token}" in webhooks.stdout

    listed = run_cli("channels", "list", data_dir=tmp_path)
    assert listed.returncode == 0 and "WhatsApp Vendas" in listed.stdout
    assert "verify_token" in listed.stdout  # which credentials are set, never what they are
    for secret in (verify_token, ACCESS_TOKEN, APP_SECRET):
        assert secret not in listed.stdout + listed.stderr


def test_a_verify_token_given_is_the_one_printed(tmp_path):
    created = run_cli("channels", "create", "WhatsApp Suporte", "--provider", "whatsapp_cloud",
                      "-c", f"access_token={ACCESS_TOKEN}", "-c", f"app_secret={APP_SECRET}",
                      "-c", "verify_token=meu-token-de-verificacao", "-s", "phone_number_id=100000000000021",
                      "-s", "waba_id=100000000000022", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "verify token: meu-token-de-verificacao" in created.stdout


def test_status_shows_the_numbers_details(workdir):
    result = run_cli("channels", "status", "WhatsApp", data_dir=workdir)
    assert result.returncode == 0, result.stderr
    assert "WhatsApp (SANDBOX): connected" in result.stdout
    for line in ("number: +55 11 90000-0099", "display name: Contact Center Sandbox", "quality rating: GREEN",
                 "messaging tier: TIER_1K"):
        assert line in result.stdout


def test_status_with_a_wrong_token_fails_clearly_without_echoing_it(workdir):
    wrong = "EAAGtokenerradoficticio00000"
    assert run_cli("channels", "update", "WhatsApp", "-c", f"access_token={wrong}", data_dir=workdir).returncode == 0
    result = run_cli("channels", "status", "WhatsApp", data_dir=workdir, env={"LANG": "pt_BR.UTF-8"})
    assert result.returncode == 1
    assert "cannot reach the provider" in result.stderr and "190" in result.stderr, result.stderr
    assert "Token de acesso" in result.stderr  # the provider's refusal, said in the terminal's language
    assert wrong not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_status_of_a_paused_channel_says_why_and_fails(workdir):
    with sqlite3.connect(workdir / "contact-center.db") as db:
        db.execute("UPDATE channels SET paused_at = '2026-11-24 13:30:00.000000', "
                   "paused_reason = 'Conta do WhatsApp bloqueada pela Meta' WHERE name = 'WhatsApp'")
    result = run_cli("channels", "status", "WhatsApp", data_dir=workdir)
    assert result.returncode == 1
    assert "display name: Contact Center Sandbox" in result.stdout  # the provider was still reached
    assert "paused since 2026-11-24 13:30 UTC" in result.stderr, result.stderr
    assert "Conta do WhatsApp bloqueada pela Meta" in result.stderr


def test_status_of_an_sms_channel_shows_the_balance(tmp_path):
    from contact_center.providers.kolmeya.sandbox import SandboxServer as KolmeyaSandbox

    with KolmeyaSandbox("sandbox-token") as kolmeya:
        run_cli("channels", "create", "SMS SANDBOX", "--provider", "kolmeya_sandbox", "-c", "token=sandbox-token",
                "-s", f"base_url={kolmeya.base_url}", data_dir=tmp_path)
        result = run_cli("channels", "status", "SMS SANDBOX", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SMS SANDBOX (SANDBOX): connected, balance R$ 9.396,84" in result.stdout


def test_templates_sync_and_list(workdir, sandbox):
    # Meta may list an item we cannot read: it is reported and the rest still land.
    sandbox.sandbox.templates.append({"id": "900000000000099", "language": "pt_BR", "status": "APPROVED",
                                      "category": "UTILITY", "components": []})
    synced = run_cli("channels", "templates", "sync", "WhatsApp", data_dir=workdir)
    assert synced.returncode == 0, synced.stderr
    assert "5 template(s) synced (5 new, 0 updated, 0 removed)" in synced.stdout
    assert "skipped: a message template has no name (id '900000000000099')" in synced.stdout

    listed = run_cli("channels", "templates", "list", "WhatsApp", data_dir=workdir)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:5]]
            for line in listed.stdout.splitlines() if line.startswith("│")}
    assert rows["cobranca_lembrete"] == ["pt_BR", "APPROVED", "UTILITY"]
    assert rows["promocao_relampago"] == ["pt_BR", "REJECTED", "MARKETING"]
    assert rows["pesquisa_satisfacao"] == ["pt_BR", "PAUSED", "UTILITY"]
    assert len(rows) == 5

    again = run_cli("channels", "templates", "sync", "WhatsApp", data_dir=workdir)
    assert "5 template(s) synced (0 new, 5 updated, 0 removed)" in again.stdout


def test_templates_sync_with_a_wrong_token_fails_clearly(workdir):
    run_cli("channels", "update", "WhatsApp", "-c", "access_token=EAAGtokenerradoficticio00000", data_dir=workdir)
    result = run_cli("channels", "templates", "sync", "WhatsApp", data_dir=workdir)
    assert result.returncode == 1 and "could not read the templates" in result.stderr, result.stderr
    assert "190" in result.stderr and "EAAGtokenerradoficticio" not in result.stderr
    assert "Traceback" not in result.stderr


def test_sandbox_commands_list_their_endpoints_in_help(tmp_path):
    whatsapp = run_cli("sandbox", "whatsapp", "--help", data_dir=tmp_path)
    assert whatsapp.returncode == 0, whatsapp.stderr
    assert "POST /_sandbox/inbound" in whatsapp.stdout and "--webhook-url" in whatsapp.stdout
    assert "--app-secret" in whatsapp.stdout and "8901" in whatsapp.stdout
    kolmeya = run_cli("sandbox", "kolmeya", "--help", data_dir=tmp_path)
    assert kolmeya.returncode == 0, kolmeya.stderr
    assert "POST /_sandbox/reply" in kolmeya.stdout


@pytest.fixture
def served(tmp_path):
    """`serve` with no provider settings at all: both sandboxes stand in."""
    port = free_port()
    environment = {**os.environ, "CONTACT_CENTER_DATA_DIR": str(tmp_path)}
    for name in ("CONTACT_CENTER_DATABASE_URL", "CONTACT_CENTER_KOLMEYA_TOKEN", *WHATSAPP_SETTINGS):
        environment.pop(name, None)
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "contact_center", "serve", "--port", str(port)],
                                   stdout=output, stderr=subprocess.STDOUT, env=environment, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve did not come up:\n{log.read_text()}")
        time.sleep(0.2)
    yield base, log
    process.terminate()
    process.wait(timeout=20)


def test_serve_without_whatsapp_settings_runs_a_whatsapp_sandbox_whose_customers_reach_the_inbox(served, tmp_path):
    base, log = served
    token = re.search(r"cc_[\w-]{40,}", run_cli("tokens", "create", "admin", "--name", "testes",
                                                data_dir=tmp_path).stdout).group(0)
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    channels = {channel["name"]: channel for channel in api.get("/api/channels").json()}
    assert channels["SMS SANDBOX"]["provider"] == "kolmeya_sandbox"
    whatsapp = channels["WhatsApp SANDBOX"]
    assert whatsapp["provider"] == "whatsapp_sandbox" and whatsapp["sandbox"] is True
    assert whatsapp["credentials_set"] == ["access_token", "app_secret", "verify_token"]
    sandbox_url = whatsapp["settings"]["base_url"]
    printed = log.read_text()
    assert f"WhatsApp sandbox at {sandbox_url}" in printed and f"{sandbox_url}/_sandbox/inbound" in printed

    # The customer writes through the sandbox, which signs and posts the webhook to us as Meta would.
    wrote = httpx.post(f"{sandbox_url}/_sandbox/inbound", timeout=10,
                       json={"from": CUSTOMER, "name": "Cliente Teste", "text": "Oi, quero a segunda via"})
    assert wrote.status_code == 200, wrote.text
    assert wrote.json()["delivery"]["status_code"] == 200, wrote.json()["delivery"]

    deadline = time.monotonic() + 15
    while True:
        items = api.get("/api/conversations").json()["items"]
        found = [c for c in items if c["channel_name"] == "WhatsApp SANDBOX"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(found) == 1, items
    conversation = found[0]
    assert conversation["channel_kind"] == "whatsapp" and conversation["phone_e164"] == "+5511900000001"
    assert conversation["contact_name"] == "Cliente Teste"
    assert conversation["last_direction"] == "in" and conversation["last_body"] == "Oi, quero a segunda via"
    timeline = api.get(f"/api/conversations/{conversation['id']}/timeline").json()
    assert any(entry.get("body") == "Oi, quero a segunda via" and entry.get("direction") == "in"
               for entry in timeline["entries"]), timeline
