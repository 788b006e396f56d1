"""Migration 0004: replies stored with the old hash-only ids get the time-first ids the parser
gives now, so a replay of one of them is still recognised; downgrading gives the old ids back."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from sqlalchemy import select

from contact_center.channels.service import create_channel
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
    with factory() as session:
        channel = create_channel(session, name="SMS", provider="kolmeya_sandbox", credentials={"token": "sandbox-token"})
        record_replies(session, [ReplyIn("kolmeya_sandbox.reply", channel.id, replace(reply, external_id=old),
                                         stored_payload(body, replace(reply, external_id=old)))
                                 for reply, old, body in zip(parsed, legacy, payloads)])
        session.commit()
        channel_id = channel.id

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
        outcomes = record_replies(session, [ReplyIn("kolmeya_sandbox.reply", channel_id, reply, json.dumps(body))
                                            for reply, body in zip(parsed, payloads)])
        session.commit()
    assert [outcome.outcome for outcome in outcomes] == ["duplicate"] * 5

    downgrade(empty_engine, "0003")
    events, messages = stored_ids(factory)
    assert events == messages == dict(zip(expected, legacy))
