"""Who may see a conversation is one rule (inbox/visibility.py), applied on every path that reveals a
conversation or its messages: this walks the whole route list, so a new route cannot forget it.

Bruno (an agent) handles a customer's conversation; Ana (another agent) must not read it anywhere:
not by listing, getting, searching, paging a timeline, fetching a fragment, or through the same
customer's unassigned conversation on another channel. Each check is also run as Bruno, to prove
it would see the secret if it were there.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from contact_center.auth import service as auth_service
from contact_center.channels import service as channels
from contact_center.contacts.service import create_contact
from contact_center.db import utcnow
from contact_center.inbox import workflow
from contact_center.messaging import attempts
from contact_center.inbox.models import Conversation, ConversationEvent

SECRETS = ("SEGREDO-DO-BRUNO", "RESPOSTA-SIGILOSA")
PHONE = "+55 11 90000-0001"

# What each route shows an agent of another agent's conversation C (D: the same customer's
# unassigned conversation on another channel). "denied": 403/404 for Ana; "filtered": an answer
# without C's messages for Ana, with them for Bruno; "refused change": Ana cannot act on C, and the
# answer shows nothing of it. Every other route must say why it reveals no conversation.
REVEALING = {
    ("GET", "/api/messages/{message_id}"): ("denied", "/api/messages/{m}"),
    ("GET", "/api/messages/{message_id}/attempts"): ("denied", "/api/messages/{m}/attempts"),
    # C's message has no file: the owner gets a 404 too; what matters is that Ana learns nothing.
    ("GET", "/api/messages/{message_id}/media"): ("refused change", "/api/messages/{m}/media"),
    ("POST", "/api/messages/{message_id}/sms-fallback"): ("refused change", "/api/messages/{m}/sms-fallback"),
    ("GET", "/api/messages"): ("filtered", "/api/messages", "/api/messages?conversation_id={c}",
                               "/api/messages?contact_id={contact}"),
    ("GET", "/api/conversations"): ("filtered", "/api/conversations?status=any", "/api/conversations?q=90000-0001"),
    ("GET", "/api/conversations/{conversation_id}"): ("denied", "/api/conversations/{c}"),
    ("GET", "/api/conversations/{conversation_id}/timeline"): ("denied", "/api/conversations/{c}/timeline"),
    ("GET", "/inbox"): ("filtered", "/inbox?status=any"),
    ("GET", "/inbox/{conversation_id:int}"): ("denied", "/inbox/{c}"),
    ("GET", "/inbox/fragments/list"): ("filtered", "/inbox/fragments/list?status=any", "/inbox/fragments/list?q=90000"),
    ("GET", "/inbox/fragments/row/{conversation_id:int}"): ("filtered", "/inbox/fragments/row/{c}?status=any"),
    ("GET", "/inbox/{conversation_id:int}/fragments/header"): ("denied", "/inbox/{c}/fragments/header"),
    ("GET", "/inbox/{conversation_id:int}/fragments/timeline"): ("denied", "/inbox/{c}/fragments/timeline"),
    ("GET", "/inbox/{conversation_id:int}/fragments/message/{message_id:int}"): ("denied",
                                                                                "/inbox/{c}/fragments/message/{m}"),
    ("GET", "/inbox/{conversation_id:int}/fragments/event/{event_id:int}"): ("denied",
                                                                            "/inbox/{c}/fragments/event/{e}"),
    ("GET", "/inbox/{conversation_id:int}/fragments/contact"): ("denied", "/inbox/{c}/fragments/contact"),
    ("POST", "/api/conversations/{conversation_id}/take"): ("refused change", "/api/conversations/{c}/take"),
    ("POST", "/api/conversations/{conversation_id}/release"): ("refused change", "/api/conversations/{c}/release"),
    ("POST", "/api/conversations/{conversation_id}/transfer"): ("refused change", "/api/conversations/{c}/transfer"),
    ("POST", "/api/conversations/{conversation_id}/close"): ("refused change", "/api/conversations/{c}/close"),
    ("POST", "/api/conversations/{conversation_id}/reopen"): ("refused change", "/api/conversations/{c}/reopen"),
    ("POST", "/api/conversations/{conversation_id}/read"): ("refused change", "/api/conversations/{c}/read"),
    ("POST", "/api/conversations/{conversation_id}/messages"): ("refused change", "/api/conversations/{c}/messages"),
    ("POST", "/api/conversations/{conversation_id}/template"): ("refused change", "/api/conversations/{c}/template"),
    ("POST", "/api/conversations/{conversation_id}/attachments"): ("refused change",
                                                                  "/api/conversations/{c}/attachments"),
    ("POST", "/api/conversations/{conversation_id}/render-template"): ("refused change",
                                                                       "/api/conversations/{c}/render-template"),
    ("POST", "/api/conversations/{conversation_id}/contact"): ("refused change", "/api/conversations/{c}/contact"),
    ("POST", "/api/conversations/{conversation_id}/contact/new"): ("refused change",
                                                                   "/api/conversations/{c}/contact/new"),
    ("PATCH", "/api/conversations/{conversation_id}/contact"): ("refused change", "/api/conversations/{c}/contact"),
    # The contact page lists the customer's conversations and messages on every channel.
    ("GET", "/contacts/{contact_id:int}"): ("filtered", "/contacts/{contact}"),
}
# The same customer's other conversation, unassigned: Ana may open it, but its timeline (which joins
# every channel of the customer) must leave out Bruno's conversation.
THROUGH_THE_OTHER_CONVERSATION = ("/api/conversations/{d}/timeline", "/inbox/{d}", "/inbox/{d}/fragments/timeline",
                                  "/inbox/{d}/fragments/message/{m}", "/inbox/{d}/fragments/event/{e}")
# What the owner's answer holds of C for routes that show no message text: the header and the
# contact panel show the conversation itself; the event, who took it.
OWNER_SEES = {"/attempts": "Kolmeya's rate limit was reached", "/fragments/header": "Bruno Dias", "/fragments/contact": "Maria Souza", "/fragments/event/": "Bruno Dias"}
LIVE_STREAM = ("GET", "/events")  # tests/web/test_live_events.py: an agent's stream leaves it out

NOT_ABOUT_CONVERSATIONS = {
    ("GET", "/admin/contact-fields"): "admin pages", ("POST", "/admin/contact-fields"): "admin pages",
    ("POST", "/admin/contact-fields/{key}"): "admin pages", ("POST", "/admin/contact-fields/{key}/remove"): "admin pages",
    ("GET", "/api/contact-fields"): "field definitions", ("POST", "/api/contact-fields"): "field definitions",
    ("PATCH", "/api/contact-fields/{key}"): "field definitions", ("DELETE", "/api/contact-fields/{key}"): "field definitions",
    ("GET", "/api/audit"): "supervisors and admins only", ("GET", "/api/audit.csv"): "supervisors and admins only",
    ("GET", "/api/audit/{entry_id}"): "supervisors and admins only", ("GET", "/audit"): "supervisors and admins only",
    ("GET", "/api/contacts/duplicates"): "contacts are the team's", ("GET", "/api/contacts/tags"): "tag counts",
    ("GET", "/api/contacts/{survivor_id}/merge"): "supervisors only", ("POST", "/api/contacts/{survivor_id}/merge"):
        "supervisors only",
    ("GET", "/api/contacts/{contact_id}/export"): "admins only (an LGPD request)",
    ("POST", "/api/contacts/{contact_id}/erase"): "admins only (an LGPD request)",
    ("GET", "/api/reports/{name}"): "supervisors only: counts", ("GET", "/reports"): "supervisors only: counts",
    ("GET", "/reports/{name}"): "supervisors only: counts", ("GET", "/reports/{name}.csv"): "supervisors only: counts",
    ("GET", "/contacts"): "contacts are the team's", ("GET", "/contacts/new"): "contacts are the team's",
    ("POST", "/contacts/new"): "contacts are the team's", ("POST", "/contacts/{contact_id:int}"):
        "contacts are the team's", ("POST", "/contacts/{contact_id:int}/opt-out"): "contacts are the team's",
    # Writes through inbox.workflow.send, which refuses another agent's conversation (tests/web/test_contact_pages.py).
    ("POST", "/contacts/{contact_id:int}/conversations"): "a send, refused in another agent's conversation",
    ("GET", "/contacts/export.csv"): "supervisors only", ("GET", "/contacts/import"): "supervisors only",
    ("POST", "/contacts/import"): "supervisors only", ("GET", "/contacts/import/{import_id:int}"): "supervisors only",
    ("POST", "/contacts/import/{import_id:int}/dry-run"): "supervisors only",
    ("POST", "/contacts/import/{import_id:int}/mapping"): "supervisors only",
    ("GET", "/contacts/import/{import_id:int}/rejections.csv"): "supervisors only",
    ("POST", "/contacts/import/{import_id:int}/run"): "supervisors only",
    ("GET", "/contacts/import/{import_id:int}/status"): "supervisors only",
    # The merge plan counts the other contact's messages and conversations: supervisors only, as the API's.
    ("GET", "/contacts/{contact_id:int}/merge"): "supervisors only",
    ("POST", "/contacts/{contact_id:int}/merge"): "supervisors only",
    ("GET", "/contacts/duplicates"): "contacts are the team's (names only)",
    ("GET", "/contacts/duplicates/merge"): "supervisors only",
    ("GET", "/openapi.json"): "the API's description", ("GET", "/docs"): "the API's description",
    ("GET", "/docs/oauth2-redirect"): "the API's description", ("GET", "/redoc"): "the API's description",
    ("POST", "/kolmeya/webhook/reply"): "provider callbacks answer the provider",
    ("POST", "/kolmeya/webhook/status"): "provider callbacks answer the provider",
    ("GET", "/whatsapp/webhook"): "provider callbacks answer the provider",
    ("POST", "/whatsapp/webhook"): "provider callbacks answer the provider",
    ("GET", "/api/channels/{channel_id}/whatsapp-templates"): "channels",
    ("POST", "/api/channels/{channel_id}/whatsapp-templates/sync"): "channels",
    ("GET", "/healthz"): "health", ("GET", "/metrics"): "totals by channel and state, no conversation",
    ("GET", "/api/me"): "the caller itself",
    ("GET", "/api/users"): "operators", ("POST", "/api/users"): "operators",
    ("PATCH", "/api/users/{user_id}"): "operators", ("GET", "/api/users/{user_id}/sessions"): "sessions",
    ("DELETE", "/api/users/{user_id}/sessions"): "sessions",
    ("DELETE", "/api/users/{user_id}/sessions/{session_id}"): "sessions",
    ("GET", "/api/tokens"): "tokens", ("POST", "/api/tokens"): "tokens", ("DELETE", "/api/tokens/{token_id}"): "tokens",
    ("GET", "/api/contacts"): "contacts are the team's", ("GET", "/api/contacts/by-phone"): "contacts are the team's",
    ("POST", "/api/contacts"): "contacts are the team's", ("GET", "/api/contacts/{contact_id}"): "contacts are the team's",
    ("PATCH", "/api/contacts/{contact_id}"): "contacts are the team's",
    ("DELETE", "/api/contacts/{contact_id}"): "contacts are the team's",
    ("GET", "/api/templates"): "templates", ("POST", "/api/templates"): "templates",
    ("GET", "/api/templates/{template_id}"): "templates", ("PATCH", "/api/templates/{template_id}"): "templates",
    ("DELETE", "/api/templates/{template_id}"): "templates",
    ("POST", "/api/templates/{template_id}/preview"): "templates, rendered for a contact",
    ("GET", "/api/channels"): "channels", ("POST", "/api/channels"): "channels",
    ("GET", "/api/channels/{channel_id}"): "channels", ("PATCH", "/api/channels/{channel_id}"): "channels",
    ("GET", "/api/channels/{channel_id}/webhooks"): "channels", ("POST", "/api/channels/{channel_id}/webhooks/rotate"):
        "channels", ("GET", "/api/channels/{channel_id}/status"): "channels",
    ("POST", "/api/sms"): "answers with the message it sends", ("POST", "/api/sms/bulk"): "a send's plan",
    ("GET", "/api/campaigns/{campaign_id}"): "counts by status, no conversation",
    ("GET", "/api/campaigns"): "counts by status, no conversation",
    ("POST", "/api/campaigns"): "supervisors only", ("POST", "/api/campaigns/preview"): "supervisors only",
    ("POST", "/api/campaigns/{campaign_id}/start"): "supervisors only",
    ("POST", "/api/campaigns/{campaign_id}/pause"): "supervisors only",
    ("POST", "/api/campaigns/{campaign_id}/resume"): "supervisors only",
    ("POST", "/api/campaigns/{campaign_id}/cancel"): "supervisors only",
    ("GET", "/api/campaigns/{campaign_id}/recipients"): "supervisors only",
    ("GET", "/api/campaigns/{campaign_id}/recipients.csv"): "supervisors only",
    ("GET", "/campaigns/{campaign_id:int}/fragments/recipients"): "supervisors only",
    ("GET", "/campaigns"): "campaign counts, no conversation", ("GET", "/campaigns/new"): "supervisors only",
    ("GET", "/campaigns/{campaign_id:int}"): "campaign counts (recipients for supervisors only)",
    ("GET", "/api/quick-replies"): "quick replies", ("POST", "/api/quick-replies"): "quick replies",
    ("PUT", "/api/quick-replies/{quick_reply_id}"): "quick replies",
    ("DELETE", "/api/quick-replies/{quick_reply_id}"): "quick replies",
    ("GET", "/"): "a redirect", ("GET", "/login"): "the login form", ("POST", "/login"): "the login form",
    ("POST", "/logout"): "logging out", ("GET", "/lang/{code}"): "the language",
    ("GET", "/inbox/counts"): "counts (checked below: they leave the conversation out too)",
    ("GET", "/inbox/contact-search"): "contacts are the team's", ("GET", "/inbox/channel-status"): "channels",
    ("GET", "/admin"): "admin pages", ("GET", "/admin/users"): "admin pages", ("POST", "/admin/users"): "admin pages",
    ("POST", "/admin/users/{user_id:int}"): "admin pages", ("POST", "/admin/users/{user_id:int}/sessions/end"):
        "admin pages", ("GET", "/admin/channels"): "admin pages", ("POST", "/admin/channels"): "admin pages",
    ("POST", "/admin/channels/{channel_id:int}"): "admin pages", ("GET", "/admin/channels/{channel_id:int}"): "admin pages",
    ("POST", "/admin/channels/whatsapp"): "admin pages", ("POST", "/admin/channels/{channel_id:int}/whatsapp"): "admin pages",
    ("POST", "/admin/channels/{channel_id:int}/whatsapp-templates/sync"): "admin pages", ("GET", "/admin/templates"): "admin pages",
    ("POST", "/admin/templates"): "admin pages", ("POST", "/admin/templates/{template_id:int}"): "admin pages",
    ("GET", "/admin/quick-replies"): "admin pages", ("POST", "/admin/quick-replies"): "admin pages",
    ("POST", "/admin/quick-replies/{quick_reply_id:int}"): "admin pages",
}
BODIES = {"transfer": {"assignee_id": None}, "messages": {"body": "Posso ajudar?"},
          "render-template": {"template_id": 1}, "template": {"template_id": 1}, "contact": {"contact_id": None}, "new": {"name": "Outra Pessoa"}}


def app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        if route.path is None or route.path.startswith("/static"):
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_route_is_classified(app):
    classified = set(REVEALING) | set(NOT_ABOUT_CONVERSATIONS) | {LIVE_STREAM}
    routes = app_routes(app)
    assert routes - classified == set(), "new routes: say whether they reveal conversations (and test them)"
    assert classified - routes == set(), "routes that are gone: take them out of the tables"


@pytest.fixture
def world(app, db, people, sms, customer_writes):
    """Bruno's conversation C with a customer (and his answer in it); the same customer's
    unassigned conversation D on another channel; clients logged in as ana, bruno and sofia."""
    contact = create_contact(db, {"name": "Maria Souza", "mobile": PHONE})
    other = channels.create_channel(db, name="SMS Cobrança", provider="kolmeya_sandbox", credentials={"token": "t"})
    c = customer_writes(sms, PHONE, SECRETS[0])
    workflow.take(db, c.id, people["bruno"])
    answer = workflow.send(db, c.id, people["bruno"], SECRETS[1])
    attempts.record(db, [answer], utcnow(), outcome="retry", reason="Kolmeya's rate limit was reached (HTTP 429)")
    d = customer_writes(other, PHONE, "Oi, é sobre outra fatura")
    event = db.query(ConversationEvent).filter_by(conversation_id=c.id).one()
    tokens = {name: auth_service.create_token(db, people[name], "tests")[1] for name in ("ana", "bruno", "sofia")}
    db.commit()
    clients = {}
    for name in tokens:
        browser = TestClient(app)
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text).group(1)
        browser.post("/login", data={"username": name, "password": "correct horse", "csrf_token": token})
        clients[name] = browser
    ids = {"c": c.id, "d": d.id, "m": answer.id, "e": event.id, "contact": contact.id}
    yield ids, tokens, clients
    for browser in clients.values():
        browser.close()


def call(clients, tokens, name: str, method: str, url: str):
    browser = clients[name]
    if url.startswith("/api/"):
        body = None
        if method != "GET":
            body = BODIES.get(url.rsplit("/", 1)[1], {})
        return browser.request(method, url, json=body, headers={"Authorization": f"Bearer {tokens[name]}"})
    return browser.request(method, url)  # the UI's own routes, with the session cookie


def shows_a_secret(response) -> bool:
    return any(secret in response.text for secret in SECRETS)


def owner_sees(response, url: str) -> bool:
    """The answer shows C: its messages, or for the routes that show none, what they show of it."""
    shown = next((text for part, text in OWNER_SEES.items() if part in url), None)
    return shows_a_secret(response) if shown is None else shown in response.text


@pytest.mark.parametrize("route", sorted(REVEALING), ids=lambda route: f"{route[0]} {route[1]}")
def test_an_agent_cannot_see_another_agents_conversation(world, db, route):
    ids, tokens, clients = world
    kind, *urls = REVEALING[route]
    for template in urls:
        url = template.format(**ids)
        seen = call(clients, tokens, "ana", route[0], url)
        assert seen.status_code < 500, (url, seen.text)
        assert not shows_a_secret(seen), (url, seen.status_code, seen.text[:300])
        if kind == "denied":
            assert seen.status_code in (403, 404), (url, seen.status_code)
        if kind == "refused change":
            assert seen.status_code in (403, 404, 409, 422), (url, seen.status_code)
            db.expire_all()
            assert db.get(Conversation, ids["c"]).assignee_id is not None  # still Bruno's
        if kind in ("denied", "filtered"):  # the same check can see the secret when it is allowed to
            owner = call(clients, tokens, "bruno", route[0], url)
            assert owner.status_code == 200 and owner_sees(owner, url), (url, owner.status_code)
            if kind == "denied":
                assert "Bruno Dias" not in seen.text or "handling" in seen.text  # 403s say who has it


@pytest.mark.parametrize("template", THROUGH_THE_OTHER_CONVERSATION)
def test_the_customers_other_conversation_leaves_out_what_the_agent_may_not_see(world, template):
    ids, tokens, clients = world
    url = template.format(**ids)
    seen = call(clients, tokens, "ana", "GET", url)
    assert seen.status_code in (200, 204) and not shows_a_secret(seen), (url, seen.status_code)
    if "/fragments/" in url and "timeline" not in url:
        assert seen.status_code == 204  # not part of the timeline Ana may see
    for name in ("bruno", "sofia"):  # the customer's whole history, for those who may see it
        owner = call(clients, tokens, name, "GET", url)
        assert owner.status_code == 200 and owner_sees(owner, url), (name, url, owner.status_code)


def test_the_unread_counts_leave_the_conversation_out_too(world):
    ids, tokens, clients = world
    ana = call(clients, tokens, "ana", "GET", "/inbox/counts?status=any").json()
    sofia = call(clients, tokens, "sofia", "GET", "/inbox/counts?status=any").json()
    assert (ana["total"], sofia["total"]) == (1, 2)  # D for Ana; C and D for the supervisor
    assert sofia["unread"] == ana["unread"] + 1
