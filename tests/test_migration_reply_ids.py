"""Migration 0004: replies stored with the old hash-only ids get the time-first ids the parser
gives now, so a replay of one of them is still recognised; downgrading gives the old ids back."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from sqlalchemy import select, text

from contact_center.db import make_session_factory
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.migrations import current_revision, downgrade, upgrade
from contact_center.providers.kolmeya.webhooks import parse_reply
from contact_center.webhooks.models import WebhookEvent
from tests.conftest import BACKENDS, _postgres_engine, _sqlite_engine

FLAT = {"phone": "5511900000001", "message": "Quero negociar", "data": "2026-11-20 09:15:00"}
NESTED = {"reply": {"reply": "Pode ligar", "received_at": "21/11/2026 18:00:05",
                    "message": {"phone": "5511900000002", "reference": "ref-002"}}}
UNDATED = {"phone": "5511900000003", "message": "Sem data"}
POLLED = {"reply": "Já paguei", "received_at": "2026-11-22 07:30:00", "message": {"phone": "5511900000004"}}
WITH_BOM = {"phone": "5511900000005", "message": "Oi", "data": "2026-11-23 10:00:00"}


@pytest.fixture(params=BACKENDS)
def empty_engine(request, tmp_path_factory):
    source = _sqlite_engine(tmp_path_factory) if request.param == "sqlite" else _postgres_engine()
    yield next(source)
    next(source, None)


def stored_ids(factory) -> tuple[dict[str, str], dict[str, str]]:
    """(webhook event id by phone, message provider id by phone)"""
    with factory() as session:
        events = dict(session.execute(select(Message.phone, WebhookEvent.external_id)
                                      .join(Message, Message.id == WebhookEvent.message_id)).all())
        messages = dict(session.execute(select(Message.phone, Message.provider_message_id)).all())
    return events, messages


def store_as_0003(connection, replies) -> int:
    """A channel, and each reply's conversation, message and webhook event, in the columns 0003
    had (today's code writes columns that did not exist then). The channel's id."""
    now = "2026-11-24 10:00:00"
    channel_id = connection.execute(text(
        "INSERT INTO channels (name, kind, provider, credentials, settings, webhook_secret, active, created_at, "
        "updated_at) VALUES ('SMS', 'sms', 'sandbox', '{}', '{}', 'secret-0003', true, :now, :now) RETURNING id"),
        {"now": now}).scalar_one()
    for number, (reply, payload) in enumerate(replies):
        phone = "+" + reply.phone
        conversation_id = connection.execute(text(
            "INSERT INTO conversations (channel_id, phone_e164, phone_key, status, unread_count, last_activity_at, "
            "created_at) VALUES (:channel, :phone, :phone, 'new', 1, :now, :now) RETURNING id"),
            {"channel": channel_id, "phone": phone, "now": now}).scalar_one()
        message_id = connection.execute(text(
            "INSERT INTO messages (reference, channel_id, conversation_id, direction, origin, phone, phone_e164, body, "
            "status, provider_message_id, segments, attempts, created_at, updated_at) VALUES (:reference, :channel, "
            ":conversation, 'in', 'webhook', :raw, :phone, :body, 'received', :id, 1, 0, :now, :now) RETURNING id"),
            {"reference": f"ref-0003-{number}", "channel": channel_id, "conversation": conversation_id,
             "raw": reply.phone, "phone": phone, "body": reply.text, "id": reply.external_id, "now": now}).scalar_one()
        connection.execute(text(
            "INSERT INTO webhook_events (source, external_id, channel_id, payload, outcome, message_id, received_at, "
            "handled_at) VALUES ('sandbox.reply', :id, :channel, :payload, 'applied', :message, :now, :now)"),
            {"id": reply.external_id, "channel": channel_id, "payload": payload, "message": message_id, "now": now})
    return channel_id


def stored_payload(body: dict, reply) -> str:
    """The raw payload as 0003 kept it: the webhook's body (one with a byte-order mark), or what
    the reply poller wrote (messaging/recovery.py)."""
    if body is POLLED:
        return json.dumps({"recovered_by": "poll", "reply": asdict(reply)}, default=str)
    return ("\ufeff" if body is WITH_BOM else "") + json.dumps(body)


def test_old_reply_ids_move_to_time_first_and_back(empty_engine):
    upgrade(empty_engine, "0003")
    factory = make_session_factory(empty_engine)
    payloads = [FLAT, NESTED, UNDATED, POLLED, WITH_BOM]
    parsed = [parse_reply(payload) for payload in payloads]
    # What 0003 stored: the same hash, without the time in front
    legacy = [reply.external_id.partition("-")[2] or reply.external_id for reply in parsed]
    with empty_engine.begin() as connection:  # as 0003's code stored them, in 0003's tables
        channel_id = store_as_0003(connection, [(replace(reply, external_id=old), stored_payload(body, replace(
            reply, external_id=old))) for reply, old, body in zip(parsed, legacy, payloads)])

    upgrade(empty_engine, "0004")
    assert current_revision(empty_engine) == "0004"
    events, messages = stored_ids(factory)
    expected = {"5511900000001": "20261120121500-" + legacy[0],  # 09:15 in Brazil is 12:15 UTC
                "5511900000002": "20261121210005-" + legacy[1],
                "5511900000003": legacy[2],  # no time to put in front: unchanged, as the parser does
                "5511900000004": "20261122103000-" + legacy[3],
                "5511900000005": "20261123130000-" + legacy[4]}
    assert events == expected
    assert messages == expected
    assert [reply.external_id for reply in parsed] == list(expected.values())

    with factory() as session:  # Kolmeya sends an old reply again: it is recognised
        outcomes = record_replies(session, [ReplyIn("sandbox.reply", channel_id, reply, json.dumps(body))  # 0004 era
                                            for reply, body in zip(parsed, payloads)])
        session.commit()
    assert [outcome.outcome for outcome in outcomes] == ["duplicate"] * 5

    downgrade(empty_engine, "0003")
    events, messages = stored_ids(factory)
    assert events == messages == dict(zip(expected, legacy))
