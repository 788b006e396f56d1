"""WhatsApp's callback URL on our server: one for every number (GET: Meta's handshake; POST: events).

A POST is told apart by `metadata.phone_number_id` (template reviews, which have none, by the
business account id). Nothing is stored before the body's signature has been checked with the
app secret of the channel it is for: a missing or wrong signature is a 401 and changes nothing.
Then each customer message is recorded like any channel's reply (messaging/inbound.py), the
statuses go through the status writer, and the other events are applied by `apply_events` in the
same writer; all are stored raw first, unique, so Meta's retries and duplicates change nothing.
An event for a number we do not have is acknowledged (Meta would retry it for days) and logged
once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import OrderedDict

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.channels.service import WebhookChannel, cached_whatsapp_numbers, whatsapp_numbers
from contact_center.db import READ_ONLY
from contact_center.errors import DomainError, NotAuthenticated
from contact_center.messaging.inbound import ReplyIn
from contact_center.providers.base import InboundReply, WebhookPayloadError
from contact_center.webhooks import events, service
from contact_center.webhooks.desk import Answer, Callback
from contact_center.webhooks.writer import ApplyIn, RejectedIn, StatusIn

from . import webhooks as wa
from .provider import to_status_update

log = logging.getLogger(__name__)
# Numbers and fields already logged: once is enough. Bounded, as unsigned callbacks for made-up
# numbers reach it too; the oldest are forgotten first.
_logged_unknown: OrderedDict[str, None] = OrderedDict()
_LOGGED_UNKNOWN_LIMIT = 1024


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


async def verify(callback: Callback) -> Answer:
    """The subscription handshake: the challenge back when the verify token is one of our channels'."""
    channels = await _channels(callback)
    for channel in channels.values():
        if channel.provider in callback.accepted and channel.verify_token:
            challenge = wa.handshake(callback.query, channel.verify_token)
            if challenge is not None:
                log.info("WhatsApp webhook verified for channel %s", channel.name)
                return Answer(challenge.encode(), content_type="text/plain")
    raise Forbidden("the verify token matches no WhatsApp channel (hub.mode must be 'subscribe'); copy it from "
                    "the channel's webhook settings")


async def _channels(callback: Callback) -> dict[str, WebhookChannel]:
    """Our WhatsApp numbers: from the cache on the event loop (every POST asks), else read off it."""
    cached = cached_whatsapp_numbers()
    if cached is not None:
        return cached

    def read() -> dict[str, WebhookChannel]:
        with callback.session_factory() as session:
            session.connection(execution_options=READ_ONLY)
            return whatsapp_numbers(session)

    return await run_in_threadpool(read)


async def receive(callback: Callback) -> Answer | dict:
    raw = await callback.body()
    signature = callback.headers.get(wa.SIGNATURE_HEADER.lower())
    if not signature:
        raise NotAuthenticated("the {wa_SIGNATURE_HEADER} header is missing: WhatsApp signs every callback",
                               wa_SIGNATURE_HEADER=wa.SIGNATURE_HEADER)
    payload = service.decode(raw)
    numbers = await _channels(callback)
    ours = {number: channel for number, channel in numbers.items() if channel.provider in callback.accepted}
    by_account = {}
    for channel in ours.values():
        by_account.setdefault(channel.account_id, channel)
    named = wa.phone_number_ids(payload)
    targets = {number: ours[number] for number in named if number in ours}
    if not named:  # a template review names only the business account
        targets = {f"waba:{waba}": by_account[waba] for waba in wa.waba_ids(payload) if waba in by_account}
    for number in sorted(named - set(ours)):
        _log_once(f"number:{number}", "WhatsApp callback for phone_number_id %s, which no channel has; "
                                      "acknowledged and ignored", number)
    if not targets:
        return {"status": "ignored"}
    secrets = {channel.app_secret for channel in targets.values()}
    if len(secrets) != 1 or None in secrets:
        raise NotAuthenticated("this callback names numbers of channels with different app secrets")
    try:
        wa.verify_signature(raw, signature, secrets.pop())
    except wa.SignatureError as exc:
        raise NotAuthenticated("{exc}; check the channel's app secret", exc=exc) from None

    writer = callback.writer()
    channel = next(iter(targets.values()))
    spec = callback.accepted[channel.provider]
    try:
        batch = wa.parse(payload)
    except WebhookPayloadError as exc:
        error = service.PayloadRejected(str(exc), field=exc.field)
        await writer.submit(RejectedIn(f"{spec.name}.events", channel, raw, error.message))
        raise error from None
    text = events.raw_text(raw)
    channel_of = {**ours, **{f"waba:{waba}": c for waba, c in by_account.items()}}
    work, with_media, counts = [], [], {"messages": 0, "statuses": 0, "other": 0, "ignored": 0}
    by_channel: dict[int, list] = {}
    for event in batch.events:
        target = channel_of.get(event.phone_number_id) or channel_of.get(f"waba:{event.waba_id}")
        if target is None:
            counts["ignored"] += 1
            continue
        by_channel.setdefault(target.id, [target, [], [], []])
        slot = 1 if isinstance(event, wa.InboundMessage) else 2 if isinstance(event, wa.StatusEvent) else 3
        by_channel[target.id][slot].append(event)
    for target, messages, statuses, others in by_channel.values():
        source = callback.accepted[target.provider].name
        for message in messages:
            work.append(writer.submit(ReplyIn(f"{source}.message", target.id, to_reply(message), text,
                                              kind="whatsapp")))
            with_media.append(len(work) - 1 if message.media is not None else None)
        if statuses:
            # The statuses go to the writer as parsed here, with the body (cut to this number's when
            # it names several) for the raw-event log.
            body = raw if len(by_channel) == 1 else _only(payload, target, channel_of)
            work.append(writer.submit(StatusIn(f"{source}.status", target, body,
                                               tuple(to_status_update(status) for status in statuses))))
        if others:
            work.append(writer.submit(ApplyIn(f"{source}.event", target,
                                              "contact_center.providers.whatsapp_cloud.callbacks:apply_events",
                                              tuple(others), text)))
        counts["messages"] += len(messages)
        counts["statuses"] += len(statuses)
        counts["other"] += len(others)
    results = await asyncio.gather(*work)
    for result in results:
        if getattr(result, "outcome", None) == "rejected":
            raise service.PayloadRejected(result.detail or "a message could not be recorded")
    # The files come by a job, once their messages are stored (the sweeper catches a lost enqueue).
    media_ids = [results[index].message_id for index in with_media
                 if index is not None and results[index].outcome == "applied"]
    if media_ids:
        await run_in_threadpool(callback.app.state.runtime.jobs.fetch_media, media_ids)
    sms_fallbacks = [message_id for result in results for message_id in getattr(result, "to_dispatch", ())]
    if sms_fallbacks:  # queued with the failures they stand in for, committed: now they may go
        await run_in_threadpool(callback.app.state.runtime.jobs.dispatch, sms_fallbacks)
    return {"status": "success", **counts}


def _only(payload: dict, target: WebhookChannel, channel_of: dict) -> bytes:
    """The body with only the changes for `target`'s number (already verified: only re-cut)."""
    entries = []
    for entry in payload.get("entry", []):
        changes = [change for change in entry.get("changes", [])
                   if channel_of.get(((change.get("value") or {}).get("metadata") or {}).get("phone_number_id"))
                   is target]
        if changes:
            entries.append({**entry, "changes": changes})
    return json.dumps({**payload, "entry": entries}).encode()


def _log_once(key: str, message: str, *args) -> None:
    if key in _logged_unknown:
        _logged_unknown.move_to_end(key)
        return
    _logged_unknown[key] = None
    if len(_logged_unknown) > _LOGGED_UNKNOWN_LIMIT:
        _logged_unknown.popitem(last=False)
    log.warning(message, *args)


# --- customer messages ---------------------------------------------------------------------------

CONTENT_TYPES = {"interactive": "choice", "button": "choice", "order": "text"}  # an order reads as its summary


def content_type(message: wa.InboundMessage) -> str:
    if message.type == "audio" and message.media is not None and message.media.voice:
        return "voice"
    if message.unsupported:
        return "unsupported"
    return CONTENT_TYPES.get(message.type, message.type)


def to_reply(message: wa.InboundMessage) -> InboundReply:
    """A customer's WhatsApp message as the reply every channel records."""
    sender = message.sender
    kind = content_type(message)
    content = {}
    for name in ("media", "location", "shared_contacts", "choice", "reaction", "edit", "revoke", "system"):
        value = getattr(message, name, None)
        if value:
            content[name] = _plain(value)
    if message.referral:
        content["referral"] = message.referral
    if message.errors:
        content["errors"] = [_plain(error) for error in message.errors]
    if message.forwarded:
        content["forwarded"] = True
    target = (message.reaction.message_id if message.reaction else
              message.edit.target_wamid if message.edit else
              message.revoke.target_wamid if message.revoke else message.context_wamid)
    identifiers = {key: value for key, value in (("wa_id", sender.wa_id), ("wa_user_id", sender.user_id),
                                                  ("wa_username", sender.username)) if value}
    new = None
    if message.system is not None:
        new = {key: value for key, value in (("wa_id", message.system.new_wa_id),
                                             ("wa_user_id", message.system.new_user_id)) if value} or None
    return InboundReply(
        external_id=message.wamid, phone=sender.phone or "", text=message.text if kind == "text" else wa.describe(message),
        received_at=message.timestamp, in_reply_to_reference=None, in_reply_to_provider_id=target,
        content_type=kind, content=content or None, identifiers=identifiers or None,
        profile_name=sender.profile_name, new_identifiers=new)


def _plain(value):
    """Parsed parts as JSON can hold them."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# --- the other events, in the writer's transaction ------------------------------------------------

def apply_events(session: Session, item: ApplyIn) -> dict:
    """Template reviews, marketing opt-outs, errors about the account: stored once each, applied once."""
    from contact_center.channels import whatsapp_templates

    new = events.store_new(session, item.source, item.channel.id, item.payload,
                           [(event.external_id, _outcome(event), _detail(event)) for event in item.events])
    applied = 0
    for event in item.events:
        if event.external_id not in new:
            continue
        if isinstance(event, wa.TemplateStatusEvent):
            applied += bool(whatsapp_templates.record_review(session, item.channel.id, event.template_name,
                                                             event.language, event.event, event.reason))
        elif isinstance(event, wa.PreferenceEvent) and event.category == "marketing_messages":
            applied += _marketing_preference(session, event)
        elif isinstance(event, wa.ValueErrorEvent):
            for error in event.errors:
                log.warning("WhatsApp reports an error on channel %s: %s %s %s", item.channel.name, error.code,
                            error.title, error.details or "")
        elif isinstance(event, wa.UnknownChange):
            _log_once(f"field:{event.field}", "WhatsApp callback field %r is not handled; acknowledged", event.field)
    return {"applied": applied, "duplicates": len(item.events) - len(new)}


def _outcome(event) -> str:
    return "ignored" if isinstance(event, (wa.UnknownChange, wa.ValueErrorEvent)) else "applied"


def _detail(event) -> str | None:
    if isinstance(event, wa.UnknownChange):
        return f"field {event.field!r} is not handled"
    if isinstance(event, wa.ValueErrorEvent):
        return "; ".join(f"{error.code} {error.title or ''}".strip() for error in event.errors)
    return None


def _marketing_preference(session: Session, event: wa.PreferenceEvent) -> int:
    from contact_center.contacts import service as contacts
    from contact_center.contacts.models import ContactIdentifier

    keys = [("wa_id", event.wa_id), ("wa_user_id", event.user_id)]
    contact_id = None
    for kind, value in keys:
        if value and contact_id is None:
            contact_id = session.scalar(select(ContactIdentifier.contact_id)
                                        .where(ContactIdentifier.kind == kind, ContactIdentifier.value == value))
    if contact_id is None and event.phone:
        from contact_center.contacts.service import find_by_phone
        found = find_by_phone(session, event.phone)
        contact_id = found.id if found is not None else None
    if contact_id is None:
        log.info("WhatsApp marketing preference %s for an unknown customer; nothing to record", event.value)
        return 0
    contacts.opt_out(session, contact_id, "opt_out_marketing", via="webhook", value=event.value == "stop",
                     reason=f"WhatsApp user_preferences: {event.value}")
    return 1
