"""Erasing what messages say while keeping that they were sent (an LGPD erasure, the retention job).

The row stays with its channel, direction, status, timestamps and segment count, so reports still
count it; its text, content (media metadata, template parameters, places) and, when asked, its
phone go. A media file is removed from the data directory once no other message refers to it
(files are content-addressed: the same image sent by two customers is one file)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import String, cast, or_, select, update
from sqlalchemy.orm import Session

from contact_center.db import chunks, utcnow
from contact_center.messaging.media import store_for
from contact_center.messaging.models import Message
from contact_center.settings import Settings
from contact_center.translations import Words, rewrite_stored, store
from contact_center.unit_of_work import after_commit


def erase_content(session: Session, message_ids: list[int], settings: Settings, *, phones: bool = False) -> int:
    """Blank the text and content of these messages (and their phones with `phones`); their media
    files no other message refers to are deleted once this commits. Returns how many files that is."""
    files: dict[str, Path] = {}
    store = store_for(settings)
    for chunk in chunks(message_ids):
        for content in session.scalars(select(Message.content).where(Message.id.in_(chunk),
                                                                     Message.content.is_not(None))):
            stored = ((content or {}).get("media") or {}).get("stored") or {}
            if stored.get("sha256"):
                mime_type = stored.get("mime_type") or content["media"].get("mime_type") or "application/octet-stream"
                files[stored["sha256"]] = store.path_for(stored["sha256"], mime_type)
        values = {"body": "", "content": None, "media_state": None, "updated_at": utcnow()}
        if phones:
            values.update(phone="", phone_e164="")
        session.execute(update(Message).where(Message.id.in_(chunk)).values(values)
                        .execution_options(synchronize_session=False))
    used = _still_used(session, list(files))
    orphans = [path for sha256, path in files.items() if sha256 not in used]
    if orphans:
        after_commit(session, lambda: [path.unlink(missing_ok=True) for path in orphans])
    return len(orphans)


def _still_used(session: Session, shas: list[str]) -> set[str]:
    """Which of these files a message not erased still refers to (read after the erasure's update):
    one scan of the messages for every 50 files."""
    used: set[str] = set()
    text = cast(Message.content, String)
    for chunk in chunks(shas, 50):
        for content in session.scalars(select(text).where(or_(*(text.like(f"%{sha}%") for sha in chunk)))):
            used.update(sha for sha in chunk if sha in content)
    return used


def scrub_status_reasons(session: Session, message_ids: list[int], scrub) -> None:
    """Pass these messages' status reasons through `scrub` (a provider's error may quote the phone)."""
    for chunk in chunks(message_ids):
        for message_id, reason in session.execute(select(Message.id, Message.status_reason).where(
                Message.id.in_(chunk), Message.status_reason.is_not(None))):
            if (clean := rewrite_stored(reason, scrub)) != reason:
                session.execute(update(Message).where(Message.id == message_id).values(status_reason=clean)
                                .execution_options(synchronize_session=False))


WAITING = ("scheduled", "queued")  # not yet handed to a provider


def cancel_waiting(session: Session, message_ids: list[int], reason: Words) -> int:
    """Cancel those of these messages still waiting to go (their phone is about to be erased);
    returns how many."""
    cancelled = 0
    for chunk in chunks(message_ids):
        cancelled += session.execute(update(Message).where(Message.id.in_(chunk), Message.status.in_(WAITING))
                                     .values(status="cancelled", status_reason=store(reason), next_attempt_at=None,
                                             updated_at=utcnow())
                                     .execution_options(synchronize_session=False)).rowcount
    return cancelled
