"""No 500 from input. Every JSON endpoint and both webhooks, on both databases, answer hostile
input with a 4xx that names the problem, and a refused request changes nothing (a webhook keeps
only the raw copy of what it refused).

Two sweeps: every route with each of the kinds of input that once answered 500 (deep nesting,
numbers past 4,300 digits or 64 bits, NaN, lone surrogates, NUL, UTF-16, ids of 2^63 and more in
the path, the query and the body), and a property-based one (Hypothesis) that mixes hostile
values into bodies that are otherwise valid, so that they reach the code behind the validation.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from contact_center.channels import service as channels
from contact_center.contacts.service import create_contact
from contact_center.db import Base
from contact_center.inbox import workflow
from contact_center.routes import CheckedRoute
from contact_center.templates.models import Template
from contact_center.webhooks.models import WebhookEvent

BIG = 2**63
KEY_TOO_BIG = 2**31  # our keys are PostgreSQL INTEGERs
SKIP = {("GET", "/events")}  # a stream: it never ends (its input is the Last-Event-ID, checked in its tests)
NOT_JSON = ("/docs", "/redoc", "/openapi.json", "/static")

# Bodies that are valid where they are sent, so that a hostile value put in one of their fields
# gets past the shape and reaches the code behind it.
VALID = {
    "/api/contacts": {"name": "Maria Souza", "mobile": "(11) 90000-0009", "document": "529.982.247-25"},
    "/api/contacts/{contact_id}": {"name": "Maria Souza", "notes": "cliente desde 2020"},
    "/api/users": {"username": "carla", "name": "Carla", "password": "correct horse", "role": "agent"},
    "/api/users/{user_id}": {"name": "Ana", "role": "agent"},
    "/api/tokens": {"name": "ERP"},
    "/api/templates": {"name": "Cobrança", "body": "Olá {{ contact.first_name }}"},
    "/api/templates/{template_id}": {"name": "Cobrança 2", "body": "Oi {{ contact.name }}"},
    "/api/templates/{template_id}/preview": {"contact_id": "@contact_id", "body": "Oi {{ contact.name }}"},
    "/api/channels": {"name": "SMS 2", "provider": "kolmeya_sandbox", "credentials": {"token": "t"},
                      "settings": {"base_url": "http://127.0.0.1:9/api/v1"}},
    "/api/channels/{channel_id}": {"name": "SMS 3", "settings": {"segment_id": 110}},
    "/api/sms": {"to": "(11) 90000-0001", "body": "Oi", "channel_id": "@channel_id"},
    "/api/sms/bulk": {"body": "Oi {{ contact.first_name }}", "contact_ids": ["@contact_id"], "confirm": False},
    "/api/conversations/{conversation_id}/transfer": {"assignee_id": "@user_id"},
    "/api/conversations/{conversation_id}/messages": {"body": "Bom dia!"},
    "/api/conversations/{conversation_id}/render-template": {"template_id": "@template_id"},
    "/api/conversations/{conversation_id}/contact": {"contact_id": "@contact_id", "name": "Maria"},
    "/api/conversations/{conversation_id}/contact/new": {"name": "Outra Pessoa"},
    "/api/quick-replies": {"title": "Bom dia", "body": "Bom dia! Como posso ajudar?"},
    "/api/quick-replies/{quick_reply_id}": {"title": "Boa tarde", "body": "Boa tarde!"},
    "/kolmeya/webhook/reply": {"phone": "5511900000001", "message": "Oi", "data": "2026-11-20 09:15:00"},
    "/kolmeya/webhook/status": {"id": "kol-1", "reference": "ref-1", "status": "entregue", "status_code": 3},
}
QUERY_NAMES = ("q", "search", "status", "view", "channel", "channel_id", "contact_id", "conversation_id",
               "campaign_id", "before", "before_id", "limit", "offset", "phone", "next", "open", "since",
               "include_ended")

# Each kind of input that answered 500 before, as raw text (some are not what json.dumps writes).
DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000
HUGE_NUMBER = "9" * 5000


def valid_body(path: str, ids: dict[str, int]) -> dict:
    """VALID[path] with the ids of what `world` made ("@contact_id" → its id)."""
    def real(value):
        if isinstance(value, str) and value.startswith("@"):
            return ids[value[1:]]
        if isinstance(value, list):
            return [real(item) for item in value]
        return value

    return {key: real(value) for key, value in VALID.get(path, {}).items()}


def with_value(body: dict, raw_value: str) -> str:
    """`body` with every field set to `raw_value` (JSON text), one hostile body for every field."""
    return "{" + ", ".join(f"{json.dumps(key)}: {raw_value}" for key in body) + "}" if body else raw_value


def kinds(path: str, ids: dict[str, int]) -> dict[str, bytes]:
    base = valid_body(path, ids) or {"name": "x", "body": "x"}
    texts = {
        "nested 5000 deep": DEEP, "objects nested 3000 deep": DEEP_OBJECT,
        "5000-digit number": with_value(base, HUGE_NUMBER), "2^63": with_value(base, str(BIG)),
        "2^31": with_value(base, str(KEY_TOO_BIG)), "ids as 2^31 in lists": with_value(base, f"[{KEY_TOO_BIG}]"),
        "-2^63-1": with_value(base, str(-BIG - 1)), "NaN": with_value(base, "NaN"),
        "Infinity": with_value(base, "-Infinity"), "1e999": with_value(base, "1e999"),
        "lone surrogate": with_value(base, '"\\ud800"'), "lone low surrogate": with_value(base, '"x\\udfff"'),
        "NUL": with_value(base, '"a\\u0000b"'), "NUL in a key": '{"na\\u0000me": "x"}',
        "ids as 2^63 in lists": with_value(base, f"[{BIG}]"), "5000-digit status_code":
            json.dumps({**VALID["/kolmeya/webhook/status"]})[:-1] + f', "status_code": {HUGE_NUMBER}}}',
    }
    raw = {name: text.encode() for name, text in texts.items()}
    raw["UTF-16"] = json.dumps(base).encode("utf-16")
    raw["UTF-16 without BOM"] = json.dumps(base).encode("utf-16-le")
    raw["not UTF-8"] = b'{"name": "\xff\xfe"}'
    return raw


def routes(app) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(app.routes):
        path = route.path
        if path is None or path.startswith(NOT_JSON):
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD" and (method, path) not in SKIP:
                found.append((method, path))
    return sorted(set(found))


def fill(path: str, value, ids: dict[str, int]) -> str:
    """The path with `value` for its parameters; "real": the ids of what `world` made."""
    def one(match) -> str:
        name = match.group(1).split(":")[0]
        return str(ids.get(name, 1) if value == "real" else value)

    return re.sub(r"\{([^}]+)\}", one, path)


@pytest.fixture
def world(client, db, make_user, sms, customer_writes):
    """Something behind each kind of id: an admin, a contact, a template, a conversation with a
    message and an event, a quick reply. Returns the request headers, the webhook secret and the ids."""
    admin, token = make_user("root", "admin")
    contact = create_contact(db, {"name": "Maria Souza", "mobile": "(11) 90000-0001"})
    channels.update_channel(db, sms, settings={"base_url": "http://127.0.0.1:9/api/v1"})  # nobody listens there
    template = Template(name="Boas-vindas", body="Olá {{ contact.first_name }}")
    db.add(template)
    conversation = customer_writes(sms, "+55 11 90000-0001", "Oi")
    workflow.take(db, conversation.id, admin)
    message = workflow.send(db, conversation.id, admin, "Bom dia")
    quick = workflow.save_quick_reply(db, admin, title="Obrigado", body="Obrigado pelo contato!")
    db.commit()
    ids = {"user_id": admin.id, "contact_id": contact.id, "template_id": template.id, "channel_id": sms.id,
           "conversation_id": conversation.id, "message_id": message.id, "quick_reply_id": quick.id,
           "token_id": 1, "event_id": 1, "campaign_id": 1, "session_id": 1, "code": "en"}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return headers, sms.webhook_secret, ids


def snapshot(db) -> str:
    """Every row of every table, as one digest: what a refused request must leave as it was. A
    webhook's refusal keeps the raw copy of the body (its purpose); token use is stamped once a
    minute whatever the answer."""
    db.expire_all()
    connection = db.connection()
    digest = hashlib.sha256()
    for table in Base.metadata.sorted_tables:
        query = select(*[column for column in table.columns if column.name != "last_used_at"])
        if table.name == WebhookEvent.__tablename__:
            query = query.where(table.c.outcome != "rejected")
        for row in connection.execute(query.order_by(*table.primary_key.columns)):
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def send(client, headers, secret, method: str, path: str, body: bytes | None, query: str = ""):
    url = path + (f"?token={secret}" if path.startswith("/kolmeya/") else "")
    if query:
        url += ("&" if "?" in url else "?") + query
    return client.request(method, url, content=body if method != "GET" else None, headers=headers)


def check(db, client, world, method, template, path_value, body, query=""):
    headers, secret, ids = world
    path = fill(template, path_value, ids)
    before = snapshot(db)
    response = send(client, headers, secret, method, path, body, query)
    where = f"{method} {path}{'?' + query if query else ''}"
    assert response.status_code < 500, (where, body[:200] if body else None, response.text[:500])
    if response.status_code >= 400:
        assert snapshot(db) == before, f"{where} answered {response.status_code} but changed rows"
        error = response.json().get("error", {}) if "json" in response.headers.get("content-type", "") else {}
        if error:
            assert error.get("message"), (where, response.text)  # says what is wrong
    return response


def test_every_route_reads_its_input_through_the_checked_route(app):
    plain = [(sorted(route.methods), route.path) for route in iter_route_contexts(app.routes)
             if hasattr(route.original_route, "dependant") and not isinstance(route.original_route, CheckedRoute)
             and not route.path.startswith(NOT_JSON)]
    assert plain == []


def test_every_route_answers_each_kind_of_hostile_input_with_a_4xx(world, db, client, app):
    ids = world[2]
    refused = 0
    for method, template in routes(app):
        if method == "GET":
            for value in ("%00", "a%00b", str(KEY_TOO_BIG), str(BIG), f"-{BIG + 1}"):
                query = "&".join(f"{name}={value}" for name in QUERY_NAMES)
                check(db, client, world, method, template, "real", None, query)
            huge = "&".join(f"{name}={'9' * 5000}" for name in ("contact_id", "limit", "q"))  # a URL has a length
            check(db, client, world, method, template, "real", None, huge)
            for path_value in (KEY_TOO_BIG, BIG, 2**64, -1, "%00", "9" * 50):
                check(db, client, world, method, template, path_value, None)
            continue
        for name, body in kinds(template, ids).items():
            for path_value in ("real", KEY_TOO_BIG):
                response = check(db, client, world, method, template, path_value, body)
                refused += response.status_code >= 400
    assert refused > 0


@pytest.mark.parametrize("name", ["a\x00b", "x" * 2000])
def test_a_form_with_a_nul_is_refused_not_a_500(client, world, name):
    # The login form: PostgreSQL cannot compare a name holding NUL with anything.
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": name, "password": "x", "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code in (401, 422), response.text[:300]


# --- property-based: hostile values inside bodies that are otherwise valid ---------------------------

HOSTILE_TEXT = st.sampled_from(["\x00", "a\x00", "\ud800", "x\udfff", "\u202e", "😀" * 50, "", " ", "null",
                                "'; DROP TABLE contacts; --", "{{ 9**(9**8) }}", "{% for a in range(10**6) %}",
                                "%00", "x" * 70_000, "(11) 90000-0001", "5511900000001", "2026-11-20 09:15:00"])
HOSTILE_NUMBER = st.sampled_from([BIG, -BIG - 1, KEY_TOO_BIG, -KEY_TOO_BIG - 1, 2**64, 10**30, -1, 0, 1, 2, 1.5, -0.0,
                                  1e308, 10**18])
LEAF = st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER, st.none(), st.booleans(), st.text(max_size=20),
                 st.integers(min_value=-(2**70), max_value=2**70))
VALUE = st.recursive(LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                     max_leaves=12)
RAW_TOKENS = st.sampled_from(["NaN", "Infinity", HUGE_NUMBER, DEEP])


@st.composite
def requests(draw, route_list, ids):
    method, template = draw(st.sampled_from(route_list))
    path_value = draw(st.sampled_from(["real", "real", "real", 2, KEY_TOO_BIG, BIG, 0, -1, "x"]))
    body = valid_body(template, ids)
    for key in draw(st.lists(st.sampled_from([*body, "name", "body", "to", "contact_id", "template_id",
                                              "channel_id", "assignee_id", "contact_ids", "search", "csv",
                                              "settings", "credentials", "password", "role", "phone", "message",
                                              "messages", "reply", "status_code", "id", "reference", "data"]),
                             min_size=1, max_size=4)):
        body[key] = draw(VALUE)
    text = json.dumps(body, ensure_ascii=draw(st.booleans()), allow_nan=True)
    if draw(st.integers(0, 5)) == 0:  # what json.dumps never writes: put one such token in a field's place
        text = text.replace(json.dumps(next(iter(body.values()))), draw(RAW_TOKENS), 1)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16"]))
    query = "&".join(f"{name}={draw(st.sampled_from(['1', '%00', str(KEY_TOO_BIG), str(BIG), 'x', '']))}"
                     for name in draw(st.lists(st.sampled_from(QUERY_NAMES), max_size=3)))
    return method, template, path_value, text.encode(encoding, "surrogatepass"), query


def test_hostile_values_inside_valid_bodies_never_give_a_500(world, db, client, app):
    @settings(max_examples=250, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(requests(routes(app), world[2]))
    def one(request):
        method, template, path_value, body, query = request
        check(db, client, world, method, template, path_value, body if method != "GET" else None, query)

    one()
