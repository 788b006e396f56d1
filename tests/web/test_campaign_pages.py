"""The campaign pages over HTTP: who sees what, what each state offers, recipients as a fragment,
escaping, and the campaigns API answering the page's session (cookie plus CSRF token)."""

from __future__ import annotations

import re

import pytest

from contact_center.campaigns.windows import ALWAYS, SendWindow
from contact_center.web.campaigns import bar, window_words
from contact_center.web.i18n import translator
from contact_center.web.rendering import percent
from tests.web.test_web_ui import XSS, login, page_csrf

CSV = "telefone;nome\n11 98888-0001;Ana Souza\n11 98888-0002;" + XSS + "\n123;Número Ruim\n11 98888-0001;Ana de novo\n"


@pytest.fixture
def ana(make_user):
    return make_user("ana", "agent")[0]


@pytest.fixture
def sofia(make_user):
    return make_user("sofia", "supervisor")[0]


def create_campaign(client, sms, **overrides) -> dict:
    """As the new-campaign page does: the session cookie and the page's CSRF token."""
    body = {"name": "Cobrança " + XSS, "channel_id": sms.id, "body": "Oi {{ contact.first_name }}!", "csv": CSV,
            "send_window": ALWAYS} | overrides
    created = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": page_csrf(client)})
    assert created.status_code == 202, created.text
    return client.get(f"/api/campaigns/{created.json()['id']}").json()


def visible_actions(html: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r'data-action="(\w+)" data-when="[\w,]+"(?: class="\w+")?>', html)}


def test_everyone_finds_campaigns_in_the_top_bar_and_an_empty_list_says_what_to_do(client, ana, sofia):
    login(client, "ana")
    page = client.get("/campaigns")
    assert page.status_code == 200 and 'id="nav-campaigns"' in page.text
    assert "Nenhuma campanha ainda — crie a primeira." in page.text
    assert 'href="/campaigns/new"' not in page.text  # agents do not create
    client.cookies.clear()
    login(client, "sofia")
    page = client.get("/campaigns").text
    assert "Nenhuma campanha ainda" in page and 'href="/campaigns/new"' in page


def test_the_new_campaign_page_is_for_supervisors(client, ana, sofia, sms):
    login(client, "ana")
    refused = client.get("/campaigns/new", headers={"Accept": "text/html"})
    assert refused.status_code == 403 and "Sem permissão" in refused.text and "perfil (Agente)" in refused.text
    client.cookies.clear()
    login(client, "sofia")
    page = client.get("/campaigns/new").text
    assert 'id="campaign-form"' in page and f'<option value="{sms.id}"' in page
    assert "{{ contact.first_name }}" in page  # the variables a body can use
    assert "segunda a sexta 08:00–20:00; sábado 08:00–14:00" in page  # the default window, in words
    for label in ("Pré-visualizar", "Criar e iniciar", "Criar sem iniciar", "Limite de mensagens por minuto"):
        assert label in page


def test_a_supervisor_follows_a_campaign_and_acts_on_it_as_its_state_allows(client, db, sofia, sms):
    from contact_center.contacts import service as contacts

    # Known numbers show their contact; the others only their number (a CSV's names are not stored).
    contacts.create_contact(db, {"name": "Ana Souza", "mobile": "11 98888-0001"})
    contacts.create_contact(db, {"name": XSS, "mobile": "11 98888-0002"})
    db.commit()
    login(client, "sofia")
    campaign = create_campaign(client, sms)
    assert campaign["status"] == "ready" and campaign["total"] == 2
    assert campaign["skip_reasons"] == {"invalid_number": 1, "duplicate": 1}

    listing = client.get("/campaigns").text
    assert f'id="campaign-row-{campaign["id"]}"' in listing and ">Pronta<" in listing
    assert "Cobrança &lt;img src=x" in listing and "<img src=x" not in listing

    page = client.get(f"/campaigns/{campaign['id']}").text
    assert visible_actions(page) == {"start", "cancel"}
    assert 'data-count="scheduled">2<' in page
    assert "número inválido: <strong>1</strong>" in page and "número repetido no público: <strong>1</strong>" in page
    assert f'href="/api/campaigns/{campaign["id"]}/recipients.csv"' in page

    rows = client.get(f"/campaigns/{campaign['id']}/fragments/recipients").text
    assert rows.count("<tr ") == 2 and "+55 11 98888-0001" in rows and "Ana Souza" in rows
    assert "&lt;img src=x" in rows and "<img src=x" not in rows
    assert client.get(f"/campaigns/{campaign['id']}/fragments/recipients", params={"status": "sent"}).text.strip() == ""
    assert client.get(f"/campaigns/{campaign['id']}/fragments/recipients", params={"status": "nope"}).status_code == 422

    # Acting needs the page's CSRF token, and answers with the state the page shows next.
    assert client.post(f"/api/campaigns/{campaign['id']}/cancel").status_code == 403
    cancelled = client.post(f"/api/campaigns/{campaign['id']}/cancel", headers={"X-CSRF-Token": page_csrf(client)})
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] == 2
    page = client.get(f"/campaigns/{campaign['id']}").text
    assert visible_actions(page) == set() and "2 mensagens não enviadas" in page
    again = client.post(f"/api/campaigns/{campaign['id']}/start", headers={"X-CSRF-Token": page_csrf(client)})
    assert again.status_code == 409 and "cancelada" in again.json()["error"]["message"]


def test_the_preview_refuses_what_the_create_would_by_its_field(client, sofia, sms):
    login(client, "sofia")
    body = {"name": "x", "channel_id": sms.id, "body": "Oi {{ contact.first_name }}", "csv": CSV}
    csrf = {"X-CSRF-Token": page_csrf(client)}
    bad = client.post("/api/campaigns/preview", json=body | {"send_window": {"blocked_dates": ["2026-02-31"]}},
                      headers=csrf)
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith("send_window.blocked_dates")
    good = client.post("/api/campaigns/preview", json=body | {"send_window": ALWAYS}, headers=csrf).json()
    assert (good["recipients"], good["sendable"], good["skipped"]) == (4, 2, {"invalid_number": 1, "duplicate": 1})


def test_an_agent_sees_the_counts_and_nothing_to_act_on(client, make_user, ana, sofia, sms):
    login(client, "sofia")
    campaign = create_campaign(client, sms)
    client.cookies.clear()
    login(client, "ana")
    page = client.get(f"/campaigns/{campaign['id']}")
    assert page.status_code == 200 and 'data-count="scheduled">2<' in page.text
    assert "data-action=" not in page.text and 'id="recipients-body"' not in page.text
    assert client.get(f"/campaigns/{campaign['id']}/fragments/recipients").status_code == 403
    csrf = page_csrf(client)
    assert client.post(f"/api/campaigns/{campaign['id']}/start", headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.post("/api/campaigns/preview", json={"name": "x", "channel_id": sms.id, "body": "Oi", "csv": CSV},
                       headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.get(f"/campaigns/{campaign['id'] + 1000}", headers={"Accept": "text/html"}).status_code == 404


def test_the_pages_in_english(client, sofia, sms):
    login(client, "sofia")
    campaign = create_campaign(client, sms)
    client.get("/lang/en?next=/campaigns")
    listing = client.get("/campaigns").text
    assert "Campaigns" in listing and ">Ready<" in listing and "Campanhas" not in listing
    page = client.get(f"/campaigns/{campaign['id']}").text
    assert "Export CSV" in page and "invalid number: <strong>1</strong>" in page
    assert "Monday to Sunday 00:00–24:00" in page
    assert "Monday to Friday 08:00–20:00; Saturday 08:00–14:00" in client.get("/campaigns/new").text


def test_a_window_in_words_and_the_bar_in_shares():
    t = translator("pt-BR")
    assert window_words(SendWindow(), t) == "segunda a sexta 08:00–20:00; sábado 08:00–14:00"
    odd = SendWindow.model_validate({"days": {"mon": {"start": "09:00", "end": "12:00"},
                                              "wed": {"start": "09:00", "end": "12:00"}}})
    assert window_words(odd, t) == "segunda 09:00–12:00; quarta 09:00–12:00"
    assert window_words(SendWindow.model_validate({"days": {}}), t) == "nenhum dia"
    segments = {s["state"]: s for s in bar({"read": 1, "sent": 1, "scheduled": 2})}
    assert (segments["read"]["x"], segments["read"]["width"]) == (0, 25)
    assert (segments["sent"]["x"], segments["scheduled"]["x"], segments["scheduled"]["width"]) == (25, 50, 50)
    assert bar({})[0]["width"] == 0
    assert (percent(0.125), percent(0.125, "en"), percent(1.0), percent(0.0), percent(None)) == (
        "12,5%", "12.5%", "100%", "0%", "—")
