"""Errors a browser reaches are pages in the operator's language with a way back; API clients and
provider webhooks keep their JSON answers."""

from __future__ import annotations

import logging
import re

import pytest

from tests.web.test_web_ui import login

PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def ana(make_user):
    return make_user("ana", "agent")[0]


def visible_text(html: str) -> str:
    """The page's words as a reader sees them (no markup, scripts or the UI strings' JSON)."""
    html = re.sub(r"<script.*?</script>|<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


@pytest.fixture
def boom(app):
    """A page that fails the way a bug does: an exception nobody handles, holding a secret."""
    def broken_page():
        raise RuntimeError("database password is hunter2")

    app.add_api_route("/inbox/broken", broken_page, include_in_schema=False)
    app.add_api_route("/api/broken", broken_page, include_in_schema=False)


def test_a_missing_page_is_a_portuguese_page_with_the_way_back(client, ana):
    anonymous = client.get("/nada", headers=PAGE)
    assert anonymous.status_code == 404 and anonymous.headers["content-type"].startswith("text/html")
    assert "Página não encontrada" in anonymous.text and 'href="/login"' in anonymous.text
    login(client, "ana")
    for path in ("/nada", "/inbox/999999"):
        page = client.get(path, headers=PAGE)
        assert page.status_code == 404, path
        text = visible_text(page.text)
        assert "Página não encontrada" in text and f"Não há nada no endereço {path}" in text
        assert 'href="/inbox" id="error-back"' in page.text
        assert "no conversation" not in page.text and "Not Found" not in page.text


def test_a_forbidden_page_says_why_in_the_operators_language(client, ana):
    login(client, "ana")
    page = client.get("/admin/users", headers=PAGE)
    assert page.status_code == 403
    text = visible_text(page.text)
    assert "Sem permissão" in text and "perfil (Agente)" in text
    assert "this page is for" not in page.text  # the API's English message stays out of a Portuguese page
    client.get("/lang/en?next=/inbox")
    english = visible_text(client.get("/admin/users", headers=PAGE).text)
    assert "Not allowed" in english and "your role (Agent)" in english
    assert "this page is for admins; you are agent" in english  # English pages add the detail


def test_a_bad_filter_and_an_expired_form_are_pages_too(client, ana):
    login(client, "ana")
    bad = client.get("/inbox", params={"status": "closed"}, headers=PAGE)
    assert bad.status_code == 422 and "O valor de “status” neste endereço não é aceito" in visible_text(bad.text)
    expired = client.post("/logout", data={"csrf_token": "forged"}, headers=PAGE)
    assert expired.status_code == 403 and "Formulário expirado" in expired.text


def test_api_and_webhook_paths_keep_their_json(client, make_user, sms):
    token = make_user("bia", "agent")[1]
    assert client.get("/api/nada", headers=PAGE).json() == {"detail": "Not Found"}
    assert client.get("/nada").json() == {"detail": "Not Found"}  # no browser: as before
    login(client, "bia")
    forbidden = client.get("/api/users", headers={**PAGE, "Authorization": f"Bearer {token}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    fragment = client.get("/inbox/999999/fragments/header", headers=PAGE)
    assert fragment.status_code == 404 and fragment.json()["error"]["code"] == "not_found"
    for webhook in (client.post("/kolmeya/webhook/reply?token=wrong", headers=PAGE, json={}),
                    client.get("/whatsapp/webhook", headers=PAGE), client.get("/kolmeya/nada", headers=PAGE)):
        assert not webhook.headers.get("content-type", "").startswith("text/html"), webhook.url


def test_a_server_error_shows_a_request_id_and_the_log_keeps_the_traceback(app, client, ana, boom, caplog):
    from fastapi.testclient import TestClient

    login(client, "ana")
    quiet = TestClient(app, raise_server_exceptions=False, cookies=client.cookies)
    with caplog.at_level(logging.ERROR, logger="contact_center.web.errors"):
        page = quiet.get("/inbox/broken", headers=PAGE)
        api = quiet.get("/api/broken", headers=PAGE)
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    request_id = page.headers["x-request-id"]
    text = visible_text(page.text)
    assert "Erro no servidor" in text and f"Código do erro: {request_id}" in text
    assert "hunter2" not in page.text and "Traceback" not in page.text and "RuntimeError" not in page.text
    assert (api.status_code, api.text) == (500, "Internal Server Error") and "hunter2" not in api.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(logged) == 1 and "/inbox/broken" in logged[0].getMessage()
    assert logged[0].exc_info and "hunter2" in str(logged[0].exc_info[1])
