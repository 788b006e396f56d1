"""Opt-out by reply: a customer whose whole reply is an opt-out keyword (SAIR, PARE, STOP…, set by
CONTACT_CENTER_OPT_OUT_KEYWORDS) stops getting messages of that kind of channel, and is told so
once (CONTACT_CENTER_OPT_OUT_CONFIRMATION) on the channel they wrote on.

Keywords are compared on the whole reply without accents, case, surrounding punctuation or
emoji: "Sair.", "pará" and " STOP " count; "não quero sair agora" does not.
"""

from __future__ import annotations

import logging
import unicodedata

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

ORIGIN = "opt_out"  # Message.origin holds 16 characters
CHANNEL_PLACEHOLDER = "{canal}"


def normalize(text: str) -> str:
    """The reply as keywords are compared: no accents, upper case, single spaces, and no
    punctuation, symbols or spaces at either end."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = " ".join(plain.split()).upper()
    start, end = 0, len(words)
    while start < end and _edge(words[start]):
        start += 1
    while end > start and _edge(words[end - 1]):
        end -= 1
    return words[start:end]


def _edge(char: str) -> bool:
    return unicodedata.category(char)[0] in "PSZC"  # punctuation, symbols (emoji), separators, controls


def parse_keywords(value: str) -> frozenset[str]:
    """The keywords of the setting's comma-separated text; ValueError naming one that is only
    punctuation (it could never match)."""
    words = set()
    for raw in (value or "").split(","):
        if not raw.strip():
            continue
        word = normalize(raw)
        if not word:
            raise ValueError(f"{raw.strip()!r} has no letters or digits, so no reply could match it")
        words.add(word)
    return frozenset(words)


def is_keyword(text: str, keywords: frozenset[str]) -> bool:
    return normalize(text) in keywords


def _settings():
    from contact_center.runtime import current_settings

    return current_settings()


def keywords() -> frozenset[str]:
    """The configured keywords, of the running process's settings."""
    return parse_keywords(_settings().opt_out_keywords)


def confirm(session: Session, channel_id: int, conversation_id: int, contact_id: int) -> int | None:
    """Queue the confirmation to a customer who just opted out by keyword, on the conversation they
    wrote in, and have it dispatched once committed; its message id, or None when the setting is
    empty or it cannot go (a deactivated channel: logged). It is the one message that goes to a
    contact who opted out. Flushes only; the caller commits."""
    from contact_center.channels.kinds import kind_of
    from contact_center.channels.models import Channel
    from contact_center.contacts.models import Contact
    from contact_center.errors import DomainError
    from contact_center.inbox.models import Conversation
    from contact_center.messaging import service

    text = _settings().opt_out_confirmation.strip()
    if not text:
        return None
    channel = session.get(Channel, channel_id)
    conversation = session.get(Conversation, conversation_id)
    body = text.replace(CHANNEL_PLACEHOLDER, kind_of(channel).label)
    try:
        with session.begin_nested():  # a confirmation that cannot go must not lose the reply
            message = service.queue_outbound(
                session, channel=channel, phone=conversation.recipient, body=body,
                contact=session.get(Contact, contact_id), origin=ORIGIN, via="system", despite_opt_out=True)
    except DomainError as exc:
        log.warning("contact %d opted out, but the confirmation was not sent on %r: %s", contact_id, channel.name,
                    exc.message)
        return None
    _dispatch_after_commit(session, message.id)
    return message.id


def _dispatch_after_commit(session: Session, message_id: int) -> None:
    from contact_center.runtime import current_or_none
    from contact_center.unit_of_work import after_commit

    runtime = current_or_none()
    if runtime is not None:  # without one (a bare script), the sweeper sends it within a minute
        after_commit(session, lambda: runtime.jobs.dispatch([message_id]))
