"""WhatsApp Cloud API webhook parsing, signature and handshake.

Every payload in tests/fixtures/whatsapp/ holds `payload` (the decoded body) and `expect`: one entry
per event, in order, with `class` (the event's type) and the fields that event must carry. For
inbound messages `describe` is the line the inbox list must show.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contact_center.providers.base import TooManyItems, WebhookPayloadError
from contact_center.providers.whatsapp_cloud.webhooks import (
    MAX_ITEMS_PER_BODY,
    InboundMessage,
    Location,
    Media,
    SharedContact,
    SignatureError,
    describe,
    handshake,
    parse,
    phone_number_ids,
    sign,
    verify_signature,
    waba_ids,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "whatsapp"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
PHONE_NUMBER_ID = "100000000000001"
APP_SECRET = "app-secret-for-tests"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["payload"]


def plain(event: Any) -> dict[str, Any]:
    """The event as JSON values: datetimes in ISO form, tuples as lists."""
    values = json.loads(json.dumps(asdict(event), default=lambda v: v.isoformat() if isinstance(v, datetime) else v))
    values["class"] = type(event).__name__
    return values


def test_fixture_directory_is_complete() -> None:
    assert len(FIXTURE_FILES) >= 37


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture(path: Path) -> None:
    fixture = json.loads(path.read_text(encoding="utf-8"))
    events = parse(fixture["payload"]).events
    assert [type(e).__name__ for e in events] == [x["class"] for x in fixture["expect"]]
    for event, expected in zip(events, fixture["expect"], strict=True):
        expected = dict(expected)
        line = expected.pop("describe", None)
        actual = plain(event)
        assert {key: actual[key] for key in expected} == expected
        if line is not None:
            assert describe(event) == line
    # A re-delivered body parses to the same external ids: how duplicates are dropped.
    again = parse(json.loads(json.dumps(fixture["payload"]))).events
    assert [e.external_id for e in again] == [e.external_id for e in events]
    assert len({e.external_id for e in events}) == len(events)
    assert phone_number_ids(fixture["payload"]) <= {PHONE_NUMBER_ID, "100000000000002"}


def test_routing_ids_of_a_multi_entry_body() -> None:
    payload = load("batch_multi_entry")
    assert phone_number_ids(payload) == {PHONE_NUMBER_ID, "100000000000002"}
    assert waba_ids(payload) == {"200000000000001", "200000000000002"}
    # A template update names no phone number: it is routed by its WABA.
    assert phone_number_ids(load("template_status_update")) == set()
    assert waba_ids(load("template_status_update")) == {"200000000000001"}


@pytest.mark.parametrize("junk", [None, [], "x", {"entry": "x"}, {"entry": [1, {"changes": [None, {"value": 3}]}]},
                                  {"entry": [{"changes": [{"value": {"metadata": {"phone_number_id": True}}}]}]}])
def test_routing_ids_never_raise(junk: Any) -> None:
    assert phone_number_ids(junk) == set()


def test_batch_splits_messages_and_statuses() -> None:
    batch = parse(load("batch_multi_entry"))
    assert [m.text for m in batch.messages] == ["Primeira", "Segunda", "Outro número"]
    assert [(s.status, s.timestamp.isoformat()) for s in batch.statuses] == [
        ("delivered", "2025-10-09T08:53:20+00:00"), ("read", "2025-10-09T08:55:20+00:00")]


def test_change_ids_follow_content() -> None:
    payload = load("template_status_update")
    first = parse(payload).events[0].external_id
    assert first.startswith("wa:change:")
    assert parse(copy.deepcopy(payload)).events[0].external_id == first
    payload["entry"][0]["changes"][0]["value"]["event"] = "APPROVED"
    assert parse(payload).events[0].external_id != first


def test_template_reason_none_reads_as_none() -> None:
    payload = load("template_status_update")
    payload["entry"][0]["changes"][0]["value"].update(event="APPROVED", reason="NONE")
    event = parse(payload).events[0]
    assert (event.event, event.reason) == ("APPROVED", None)


# --- malformed bodies ----------------------------------------------------------------

def _msgs(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return payload["entry"][0]["changes"][0]["value"]["messages"]


MSG = "entry[0].changes[0].value.messages[0]"
MALFORMED = [
    ("text", lambda p: p.update(object="page"), "object", "whatsapp_business_account"),
    ("text", lambda p: p.update(entry={}), "entry", "a list of entries"),
    ("text", lambda p: p["entry"][0].pop("changes"), "entry[0].changes", "a list of changes"),
    ("text", lambda p: p["entry"][0]["changes"].append("x"), "entry[0].changes[1]", "a change object"),
    ("text", lambda p: p["entry"][0]["changes"][0].pop("field"), "entry[0].changes[0].field", "missing"),
    ("text", lambda p: p["entry"][0]["changes"][0]["value"].pop("metadata"), "entry[0].changes[0].value.metadata",
     "phone_number_id"),
    ("text", lambda p: p["entry"][0]["changes"][0]["value"]["metadata"].pop("phone_number_id"),
     "entry[0].changes[0].value.metadata.phone_number_id", "missing"),
    ("text", lambda p: _msgs(p)[0].pop("id"), f"{MSG}.id", "wamid"),
    ("text", lambda p: _msgs(p)[0].update(id=7), f"{MSG}.id", "got int 7"),
    ("text", lambda p: _msgs(p)[0].update(timestamp="ontem"), f"{MSG}.timestamp", "unix seconds"),
    ("text", lambda p: _msgs(p)[0].update(timestamp="9" * 5000), f"{MSG}.timestamp", "unix seconds"),
    ("text", lambda p: _msgs(p)[0].pop("type"), f"{MSG}.type", "message type"),
    ("text", lambda p: _msgs(p)[0].update(text={"body": 3}), f"{MSG}.text.body", "text body"),
    ("text", lambda p: _msgs(p)[0].update(text="Oi"), f"{MSG}.text", "a text object"),
    ("text", lambda p: (_msgs(p)[0].pop("from"), p["entry"][0]["changes"][0]["value"].pop("contacts")),
     f"{MSG}.from", "from_user_id"),
    ("text", lambda p: _msgs(p)[0].update(context={"forwarded": "yes"}), f"{MSG}.context.forwarded", "true or false"),
    ("text", lambda p: _msgs(p).append({"id": "x", "type": "text"}), "entry[0].changes[0].value.messages[1].timestamp",
     "missing"),
    ("image_caption", lambda p: _msgs(p)[0]["image"].pop("id"), f"{MSG}.image.id", "media id"),
    ("location", lambda p: _msgs(p)[0]["location"].update(latitude="-23.5"), f"{MSG}.location.latitude", "degrees"),
    ("location", lambda p: _msgs(p)[0]["location"].update(longitude=10**400), f"{MSG}.location.longitude", "degrees"),
    ("reaction", lambda p: _msgs(p)[0]["reaction"].pop("message_id"), f"{MSG}.reaction.message_id", "missing"),
    ("contacts", lambda p: _msgs(p)[0]["contacts"][0]["phones"].append(5), f"{MSG}.contacts[0].phones[2]",
     "a phone object"),
    ("unsupported", lambda p: _msgs(p)[0]["errors"][0].update(code="x"), f"{MSG}.errors[0].code", "integer"),
    ("text", lambda p: p["entry"][0]["changes"][0]["value"]["contacts"][0].update(profile="Ana"),
     "entry[0].changes[0].value.contacts[0].profile", "a profile object"),
    ("status_sent", lambda p: p["entry"][0]["changes"][0]["value"]["statuses"][0].update(status="deleted"),
     "entry[0].changes[0].value.statuses[0].status", "delivered"),
    ("status_sent", lambda p: p["entry"][0]["changes"][0]["value"]["statuses"][0].update(pricing=[]),
     "entry[0].changes[0].value.statuses[0].pricing", "a pricing object"),
    ("batch_multi_entry", lambda p: p["entry"][0]["changes"][1]["value"]["statuses"][1].pop("id"),
     "entry[0].changes[1].value.statuses[1].id", "missing"),
    ("template_status_update", lambda p: p["entry"][0]["changes"][0]["value"].pop("event"),
     "entry[0].changes[0].value.event", "APPROVED"),
    ("user_preferences_stop", lambda p: p["entry"][0]["changes"][0]["value"]["user_preferences"][0].pop("wa_id"),
     "entry[0].changes[0].value.user_preferences[0].wa_id", "user_id"),
]


@pytest.mark.parametrize(("fixture", "mutate", "field", "phrase"), MALFORMED,
                         ids=[f"{m[0]}:{m[2]}" for m in MALFORMED])
def test_malformed_body_names_the_field(fixture: str, mutate: Any, field: str, phrase: str) -> None:
    payload = load(fixture)
    mutate(payload)
    with pytest.raises(WebhookPayloadError) as caught:
        parse(payload)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)
    assert phrase in str(caught.value)


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(WebhookPayloadError, match="expected the webhook body as an object"):
        parse(body)


def test_too_many_items() -> None:
    payload = load("status_delivered")
    value = payload["entry"][0]["changes"][0]["value"]
    value["statuses"] = value["statuses"] * MAX_ITEMS_PER_BODY  # plus the change itself: one over
    with pytest.raises(TooManyItems) as caught:
        parse(payload)
    assert caught.value.field == "entry[0].changes[0].value"
    value["statuses"] = value["statuses"][:-1]
    assert len(parse(payload).events) == MAX_ITEMS_PER_BODY - 1


def test_too_many_changes() -> None:
    payload = load("unknown_field")
    payload["entry"][0]["changes"] *= MAX_ITEMS_PER_BODY + 1
    with pytest.raises(TooManyItems):
        parse(payload)


# --- loosely read shapes and small rules -------------------------------------------------

def _one(payload: dict[str, Any]) -> InboundMessage:
    (event,) = parse(payload).events
    assert isinstance(event, InboundMessage)
    return event


@pytest.mark.parametrize("edit", [
    {"message_id": "wamid.T", "text": {"body": "novo"}},
    {"id": "wamid.T", "text": "novo"},
    {"context": {"id": "wamid.T"}, "body": "novo"},
])
def test_edit_shapes_accepted(edit: dict[str, Any]) -> None:
    payload = load("edit")
    _msgs(payload)[0]["edit"] = edit
    event = _one(payload)
    assert (event.edit.target_wamid, event.edit.text, event.text) == ("wamid.T", "novo", "novo")


def test_edit_and_revoke_without_details_still_arrive() -> None:
    payload = load("revoke")
    message = _msgs(payload)[0]
    message.pop("revoke")
    message["context"] = {"id": "wamid.T"}
    assert _one(payload).revoke.target_wamid == "wamid.T"
    payload = load("edit")
    _msgs(payload)[0]["edit"] = "?"
    event = _one(payload)
    assert (event.edit.target_wamid, event.edit.text, describe(event)) == (None, None, "✏️ Mensagem editada")


def test_unread_types_are_marked_unsupported() -> None:
    payload = load("text")
    message = _msgs(payload)[0]
    message.pop("text")
    message.update(type="request_welcome")
    event = _one(payload)
    assert (event.type, event.unsupported, describe(event)) == ("request_welcome", True,
                                                                 "Tipo de mensagem não suportado")


def test_contact_entry_is_matched_by_id_not_position() -> None:
    payload = load("text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"].insert(0, {"profile": {"name": "Outra Pessoa"}, "wa_id": "5511900000007"})
    assert _one(payload).sender.profile_name == "Ana Souza"
    value["contacts"] = [{"profile": {"name": "Outra Pessoa"}, "wa_id": "5511900000007"}]
    assert _one(payload).sender.profile_name is None  # a contradicting wa_id is never taken


def test_integer_timestamp_accepted() -> None:
    payload = load("text")
    _msgs(payload)[0]["timestamp"] = 1760000000
    assert _one(payload).timestamp.isoformat() == "2025-10-09T08:53:20+00:00"


@pytest.mark.parametrize(("wa_id", "phone"), [
    ("554891910234", "+5548991910234"),  # old 12-digit mobile: ninth digit restored
    ("5548991910234", "+5548991910234"),  # already 13 digits
    ("554832221234", "+554832221234"),  # landline (subscriber starts 3): never a 9
    ("551125550000", "+551125550000"),  # landline (starts 2)
    ("16315551234", "+16315551234"),  # not Brazilian: as is
    ("12", None),  # not a phone number we can read: no phone, the wa_id still identifies
])
def test_phone_from_wa_id(wa_id: str, phone: str | None) -> None:
    payload = load("text")
    _msgs(payload)[0]["from"] = wa_id
    payload["entry"][0]["changes"][0]["value"]["contacts"] = []
    sender = _one(payload).sender
    assert (sender.wa_id, sender.phone) == (wa_id, phone)


def test_status_recipient_gets_the_ninth_digit() -> None:
    payload = load("status_played")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["recipient_id"] = "554891910234"
    (status,) = parse(payload).events
    assert (status.recipient_id, status.recipient_wa_id) == ("+5548991910234", "554891910234")


# --- describe ----------------------------------------------------------------------

def _with(**fields: Any) -> InboundMessage:
    return replace(_one(load("text")), **fields)


def _media(**fields: Any) -> Media:
    return Media(**{"media_id": "1", "mime_type": None, "sha256": None, "caption": None, "filename": None,
                    "voice": False, "animated": False, "url": None, **fields})


@pytest.mark.parametrize(("fields", "line"), [
    ({"type": "image", "media": _media()}, "📷 Imagem"),
    ({"type": "video", "media": _media(caption="Olha isso")}, "🎬 Vídeo: Olha isso"),
    ({"type": "document", "media": _media()}, "📄 Documento"),
    ({"type": "document", "media": _media(caption="fatura")}, "📄 Documento: fatura"),
    ({"location": Location(-23.5, -46.6, None, None, None)}, "📍 Localização"),
    ({"location": Location(-23.5, -46.6, None, "Rua A, 1", None)}, "📍 Localização: Rua A, 1"),
    ({"shared_contacts": (SharedContact("Ana Souza", ()), SharedContact(None, ("+5511900000003",)))},
     "👤 Contatos: Ana Souza, +5511900000003"),
    ({"text": "linha um\nlinha dois"}, "linha um linha dois"),
])
def test_describe(fields: dict[str, Any], line: str) -> None:
    assert describe(_with(**fields)) == line


# --- signature ---------------------------------------------------------------------

def test_signature_test_vector() -> None:
    assert sign(b"test", "secret") == "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    verify_signature(b"test", "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914", "secret")


def test_signature_valid_over_the_exact_bytes() -> None:
    raw = json.dumps(load("text")).encode()  # Meta's own form: non-ASCII escaped
    verify_signature(raw, sign(raw, APP_SECRET), APP_SECRET)
    verify_signature(raw, sign(raw, APP_SECRET).upper().replace("SHA256=", "sha256="), APP_SECRET)


def test_signature_fails_over_reserialised_non_ascii_json() -> None:
    raw = json.dumps(load("text")).encode()  # "Ol\u00e1": as Meta signs it
    assert b"\\u00e1" in raw
    header = sign(raw, APP_SECRET)
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-8")
    assert json.loads(reserialised) == json.loads(raw)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(reserialised, header, APP_SECRET)


@pytest.mark.parametrize(("header", "phrase"), [
    (None, "missing"),
    ("", "missing"),
    ("sha1=" + "0" * 40, "expected 'sha256=<hex digest>'"),
    ("0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914", "expected 'sha256=<hex digest>'"),
    ("sha256=" + "z" * 64, "not hexadecimal"),
    ("sha256=abc", "64 hex digits"),
    ("sha256=" + "0" * 64, "does not match"),
    ("sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0915", "does not match"),
])
def test_signature_rejected(header: str | None, phrase: str) -> None:
    with pytest.raises(SignatureError, match=phrase.replace("(", r"\(")):
        verify_signature(b"test", header, "secret")


def test_signature_with_another_secret_rejected() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(b"test", sign(b"test", "secret"), "other-secret")


def test_signature_needs_a_secret() -> None:
    with pytest.raises(SignatureError, match="no app secret"):
        verify_signature(b"test", sign(b"test", ""), "")


# --- handshake ---------------------------------------------------------------------

def test_handshake_answers_the_challenge() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "token-123", "hub.challenge": "1158201444"}
    assert handshake(params, "token-123") == "1158201444"


@pytest.mark.parametrize(("params", "token"), [
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, "token-123"),
    ({"hub.mode": "unsubscribe", "hub.verify_token": "token-123", "hub.challenge": "1"}, "token-123"),
    ({"hub.verify_token": "token-123", "hub.challenge": "1"}, "token-123"),
    ({"hub.mode": "subscribe", "hub.challenge": "1"}, "token-123"),
    ({"hub.mode": "subscribe", "hub.verify_token": "token-123"}, "token-123"),
    ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, ""),  # no token configured
    ({"hub.mode": "subscribe", "hub.verify_token": "tökén", "hub.challenge": "1"}, "token-123"),
])
def test_handshake_refused(params: dict[str, str], token: str) -> None:
    assert handshake(params, token) is None


# --- arbitrary input ---------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_arbitrary_json_raises_only_payload_errors(payload: Any) -> None:
    try:
        parse(payload)
    except WebhookPayloadError:
        pass
    phone_number_ids(payload)
    waba_ids(payload)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*path, index))
    return found


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(FIXTURE_FILES), st.data())
def test_fixtures_with_one_node_replaced_raise_only_payload_errors(path: Path, data: st.DataObject) -> None:
    # Random JSON alone rarely gets past the envelope; a real body with one part broken does.
    payload = json.loads(path.read_text(encoding="utf-8"))["payload"]
    where = data.draw(st.sampled_from(_paths(payload)[1:]))
    parent = payload
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = data.draw(JSON)
    try:
        batch = parse(payload)
    except WebhookPayloadError:
        return
    for event in batch.events:
        if isinstance(event, InboundMessage):
            assert isinstance(describe(event), str)
