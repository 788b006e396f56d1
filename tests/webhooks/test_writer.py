"""The group-commit writer behind the webhooks: a batch commits once, and one bad callback in it
does not sink the others."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select

from contact_center.channels import service as channels
from contact_center.inbox.models import Conversation
from contact_center.messaging.inbound import ReplyIn
from contact_center.messaging.models import Message
from contact_center.providers.base import InboundReply
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.webhooks.writer import IngestWriter, WriteFailed


def reply(channel_id: int, n: int) -> ReplyIn:
    inbound = InboundReply(external_id=f"writer-{n}", phone=f"+55 11 90000-{n:04d}", text=f"Resposta {n}",
                           received_at=datetime.now(UTC), in_reply_to_reference=None, in_reply_to_provider_id=None)
    return ReplyIn("tests.reply", channel_id, inbound, payload="{}")


def run_in_one_batch(session_factory, items: list[ReplyIn]) -> list:
    """Submit every item while the writer is busy with a first reply, so that they all land in
    its next batch. The first reply (number 0, on the first item's channel) is stored too."""
    busy, release = threading.Event(), threading.Event()

    def held_factory():
        busy.set()
        release.wait(5)
        return session_factory()

    async def go():
        writer = IngestWriter(held_factory)
        try:
            first = writer.submit(reply(items[0].channel_id, 0))
            await asyncio.to_thread(busy.wait, 5)
            futures = [writer.submit(item) for item in items]
            release.set()
            await first
            return await asyncio.gather(*futures, return_exceptions=True)
        finally:
            await writer.stop()

    return asyncio.run(go())


def test_a_batch_of_replies_lands_together(session_factory, db):
    channel = channels.create_channel(db, name="SMS", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN})
    db.commit()
    outcomes = run_in_one_batch(session_factory, [reply(channel.id, n) for n in range(1, 6)])
    assert [o.outcome for o in outcomes] == ["applied"] * 5
    stored = db.scalars(select(Message.body).where(Message.direction == "in").order_by(Message.id)).all()
    assert stored == [f"Resposta {n}" for n in range(0, 6)]


def test_one_bad_reply_does_not_sink_its_batch(session_factory, db):
    channel = channels.create_channel(db, name="SMS", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN})
    db.commit()
    no_such_channel = channel.id + 1000  # its conversation cannot be stored: the foreign key refuses it
    items = [reply(channel.id, 1), reply(no_such_channel, 2), reply(channel.id, 3)]
    first, bad, third = run_in_one_batch(session_factory, items)
    assert (first.outcome, third.outcome) == ("applied", "applied")
    assert isinstance(bad, WriteFailed)
    stored = db.scalars(select(Message.body).where(Message.direction == "in").order_by(Message.id)).all()
    assert stored == ["Resposta 0", "Resposta 1", "Resposta 3"]


def test_replies_that_open_a_conversation_are_all_counted(session_factory, db):
    channel = channels.create_channel(db, name="SMS", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN})
    db.commit()
    first, second = reply(channel.id, 7), reply(channel.id, 8)
    # The same customer writes twice in one batch.
    first.reply = replace(first.reply, received_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    second.reply = replace(second.reply, phone=first.reply.phone, received_at=datetime(2026, 11, 24, 9, 5, tzinfo=UTC))
    outcomes = run_in_one_batch(session_factory, [first, second])
    assert [o.outcome for o in outcomes] == ["applied", "applied"]
    [conversation] = db.scalars(select(Conversation).where(Conversation.phone_e164 == "+5511900000007")).all()
    assert conversation.unread_count == 2
    assert conversation.last_inbound_at == conversation.last_activity_at == second.reply.received_at
