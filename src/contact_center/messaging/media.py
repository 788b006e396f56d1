"""The files customers send (WhatsApp images, voice notes, documents…): fetched by a job, checked,
kept under the data directory.

A media message is stored with its metadata and `media_state` "pending" by the webhook writer,
before anything is fetched: a retried webhook is a duplicate by then, and the file must still come.
The job asks the provider for it (the URL it gives lasts minutes, so it is used at once), checks
the size and the sha256 the provider announced, and writes it content-addressed; a failure is
retried with backoff, and the sweeper re-enqueues whatever a lost job left pending.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contact_center import translations
from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider
from contact_center.db import transaction, utcnow
from contact_center.errors import NotFound
from contact_center.messaging import service
from contact_center.messaging.models import Message
from contact_center.providers.base import ProviderError, supports
from contact_center.providers.whatsapp_cloud.media import MediaRejected, MediaStore, max_bytes_for
from contact_center.settings import Settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
BACKOFF_SECONDS = (30, 120, 600, 3600)
LOST_AFTER = timedelta(minutes=2)  # a pending file no job has touched for this long is fetched again
MEDIA_KINDS = {"voice": "audio"}  # our content types that WhatsApp calls otherwise


@dataclass
class FetchReport:
    stored: list[int] = field(default_factory=list)
    retry: list[tuple[int, float]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def store_for(settings: Settings) -> MediaStore:
    return MediaStore(Path(settings.data_dir))


def fetch(session_factory: sessionmaker[Session], settings: Settings, message_ids: list[int]) -> FetchReport:
    """Fetch the pending files of these messages."""
    report = FetchReport()
    with transaction(session_factory) as session:
        pending = [(m.id, m.channel_id, dict(m.content["media"]), m.content_type)
                   for m in session.scalars(select(Message).where(Message.id.in_(message_ids),
                                                                  Message.media_state == "pending"))]
        channels = {c.id: c for c in session.scalars(select(Channel).where(
            Channel.id.in_({channel_id for _, channel_id, _, _ in pending})))}
        providers = {channel_id: build_provider(channel, settings) for channel_id, channel in channels.items()}
    store = store_for(settings)
    try:
        for message_id, channel_id, media, content_type in pending:
            outcome, detail = _fetch_one(providers[channel_id], store, media, content_type)
            with transaction(session_factory) as session:
                message = session.get(Message, message_id)
                content = dict(message.content)
                media = dict(content["media"])
                if outcome == "stored":
                    media["stored"] = detail
                    media.pop("fetch_error", None)
                    message.media_state = "stored"
                    report.stored.append(message_id)
                else:
                    attempts = media.get("fetch_attempts", 0) + 1
                    media["fetch_attempts"], media["fetch_error"] = attempts, translations.store(detail)
                    if outcome == "final" or attempts >= MAX_ATTEMPTS:
                        message.media_state = "failed"
                        report.failed.append(message_id)
                        log.warning("message %d: media not kept: %s", message_id, detail)
                    else:
                        report.retry.append((message_id, BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]))
                        log.info("message %d: media fetch failed (attempt %d), retrying: %s", message_id, attempts,
                                 detail)
                content["media"] = media
                message.content = content
                message.updated_at = utcnow()
                if outcome == "stored" or message.media_state == "failed":
                    service.announce_message(session, message, "message.status")  # the bubble redraws
    finally:
        for provider in providers.values():
            provider.close()
    return report


def _fetch_one(provider, store: MediaStore, media: dict, content_type: str) -> tuple[str, object]:
    """("stored", {sha256, size}) | ("retry", why) | ("final", why)."""
    if not supports(provider, "fetch_media"):
        return "final", "this channel's provider does not hand out media files"
    mime_type = media.get("mime_type") or "application/octet-stream"
    limit = max_bytes_for(mime_type, MEDIA_KINDS.get(content_type, content_type))
    try:
        fetched = provider.fetch_media(media["media_id"], limit)
        kept = store.store(fetched.content, media.get("sha256") or fetched.sha256, fetched.mime_type or mime_type,
                           limit)
    except ProviderError as exc:
        return ("retry" if exc.retryable or exc.outcome_unknown else "final"), exc.reason
    except MediaRejected as exc:
        return "retry", exc.reason  # a truncated or corrupted download: fetched again
    return "stored", {"sha256": kept.sha256, "size": kept.size, "mime_type": fetched.mime_type or mime_type}


def lost(session: Session, limit: int = 500) -> list[int]:
    """Pending files whose job was lost (the sweeper's): untouched for LOST_AFTER."""
    return list(session.scalars(select(Message.id).where(Message.media_state == "pending",
                                                         Message.updated_at < utcnow() - LOST_AFTER).limit(limit)))


def stored_file(message: Message, settings: Settings) -> tuple[Path, str, str | None]:
    """(path, mime type, file name) of a message's kept file; NotFound while it is not kept."""
    media = (message.content or {}).get("media")
    if not media:
        raise NotFound("message {message_id} has no media", message_id=message.id)
    stored = media.get("stored")
    if message.media_state != "stored" or not stored:
        state = "could not be fetched" if message.media_state == "failed" else "is still being fetched"
        raise NotFound("the file of message {message_id} {state}", message_id=message.id, state=state, field="media")
    mime_type = stored.get("mime_type") or media.get("mime_type") or "application/octet-stream"
    return store_for(settings).path_for(stored["sha256"], mime_type), mime_type, media.get("filename")


# --- files operators send ------------------------------------------------------------------------

# What WhatsApp shows as an image, a player or a video; any other file goes as a document.
SENT_AS = {"image/jpeg": "image", "image/png": "image", "audio/mpeg": "audio", "audio/ogg": "audio",
           "audio/aac": "audio", "audio/mp4": "audio", "audio/amr": "audio", "video/mp4": "video",
           "video/3gpp": "video"}


def kind_to_send(mime_type: str) -> str:
    return SENT_AS.get(mime_type.split(";")[0].strip().lower(), "document")


def keep_outgoing(settings: Settings, content: bytes, mime_type: str, filename: str, caption: str | None) -> dict:
    """An operator's file kept under the data directory before its message is queued: Message.content
    for it (the provider gets it uploaded at send time). MediaRejected says why it cannot go."""
    kind = kind_to_send(mime_type)
    kept = store_for(settings).store(content, None, mime_type, max_bytes_for(mime_type, kind))
    media = {"mime_type": mime_type, "filename": filename, "caption": caption,
             "stored": {"sha256": kept.sha256, "size": kept.size, "mime_type": mime_type}}
    return {"media": media}


def outgoing_file(settings: Settings, content: dict | None) -> tuple[bytes, str, str] | None:
    """(bytes, mime type, file name) of an operator's file still to upload, for the dispatcher."""
    media = (content or {}).get("media")
    if not media or media.get("media_id") or not media.get("stored"):
        return None
    stored = media["stored"]
    path = store_for(settings).path_for(stored["sha256"], stored["mime_type"])
    return path.read_bytes(), stored["mime_type"], media.get("filename") or path.name
