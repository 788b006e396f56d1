"""On SQLite an erasure leaves nothing of the person in the files: secure_delete zeroes the space the
old name and message bodies took in their pages, and the erasure's commit checkpoints the WAL and
truncates it, so older copies of those pages do not linger in the -wal file. The raw bytes of the
database and its WAL are searched, before the erasure (where the text must be) and after it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contact_center.channels.service import create_channel
from contact_center.contacts import service as contacts
from contact_center.db import make_session_factory, transaction
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.privacy.erasure import erase_contact
from contact_center.providers.base import InboundReply
from contact_center.settings import Settings
from tests.conftest import _migrated

NAME = "Zuleica Borbagato Quintiliano"
BODIES = ["Minha senha do portal provisória é girassol-azul-8841", "Segue o endereço: Rua das Acácias Roxas, 77"]


@pytest.fixture
def engine(tmp_path_factory):
    source = _migrated("sqlite", tmp_path_factory)
    yield next(source)
    next(source, None)


def raw_bytes(engine) -> bytes:
    path = Path(engine.url.database)
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_the_erased_texts_are_not_in_the_database_file_nor_its_wal(engine, tmp_path):
    factory = make_session_factory(engine)
    settings = Settings(data_dir=tmp_path, secret_key="test-secret-key-0123456789", webhook_writer_process=False,
                        _env_file=None)
    with transaction(factory) as session:
        channel = create_channel(session, name="SMS", provider="kolmeya_sandbox", credentials={"token": "t"})
        contact = contacts.create_contact(session, {"name": NAME, "mobile": "(11) 90000-0301"})
        # Someone else's messages, written before and after: their pages are shared with the person's.
        other = contacts.create_contact(session, {"name": "Outro Cliente", "mobile": "(11) 90000-0302"})
        session.flush()
        replies = [ReplyIn("tests.reply", channel.id, InboundReply(
            external_id=f"r{n}", phone=phone, text=text, received_at=datetime.now(UTC), in_reply_to_reference=None,
            in_reply_to_provider_id=None), payload="{}")
            for n, (phone, text) in enumerate([("5511900000302", "Bom dia, tudo certo"),
                                                *(("5511900000301", body) for body in BODIES),
                                                ("5511900000302", "Obrigado pelo retorno")])]
        assert {out.outcome for out in record_replies(session, replies)} == {"applied"}
        contact_id, other_id = contact.id, other.id
    before = raw_bytes(engine)
    for text in (NAME, *BODIES):
        assert text.encode() in before, text  # the search finds what is there

    with transaction(factory) as session:
        erase_contact(session, contact_id, reason="Pedido do titular, protocolo 2026-0301", requested_by="O titular",
                      settings=settings)

    after = raw_bytes(engine)
    assert [text for text in (NAME, *BODIES, "90000-0301", "5511900000301") if text.encode() in after] == []
    assert b"Obrigado pelo retorno" in after  # the other customer's messages are still there
    with transaction(factory) as session:
        assert contacts.get_contact(session, other_id).name == "Outro Cliente"
    wal = Path(engine.url.database + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
