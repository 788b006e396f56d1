"""Conversations made the way the product makes them: customers' replies and queued messages."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from contact_center.auth import service as auth_service
from contact_center.auth.models import User
from contact_center.channels import service as channels
from contact_center.inbox.models import Conversation
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.providers.base import InboundReply

_external = itertools.count(1)


@pytest.fixture
def sms(db):
    channel = channels.create_channel(db, name="SMS Principal", provider="sandbox", credentials={"token": "t"})
    db.flush()
    return channel


@pytest.fixture
def people(db):
    """ana and bruno (agents), sofia (supervisor), root (admin)."""
    made = {}
    for username, name, role in (("ana", "Ana Lima", "agent"), ("bruno", "Bruno Dias", "agent"),
                                 ("sofia", "Sofia Reis", "supervisor"), ("root", "Rita Admin", "admin")):
        made[username] = User(username=username, name=name, role=role, password_hash=_password_hash(), active=True)
        db.add(made[username])
    db.flush()
    return made


@functools.cache
def _password_hash() -> str:
    return auth_service.hash_password("correct horse")  # argon2 is slow on purpose: once per run is enough


@pytest.fixture
def customer_writes(db):
    """customer_writes(channel, phone, text) -> the Conversation the reply landed in."""

    def write(channel, phone: str, text: str = "Olá", at: datetime | None = None) -> Conversation:
        reply = InboundReply(external_id=f"test-{next(_external)}", phone=phone, text=text,
                             received_at=at or datetime.now(UTC), in_reply_to_reference=None,
                             in_reply_to_provider_id=None)
        [recorded] = record_replies(db, [ReplyIn("tests.reply", channel.id, reply, payload="{}")])
        assert recorded.outcome == "applied", recorded
        conversation_id = db.scalar(select(Message.conversation_id).where(Message.id == recorded.message_id))
        conversation = db.get(Conversation, conversation_id)
        db.refresh(conversation)
        return conversation

    return write
