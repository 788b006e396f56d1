"""Kolmeya's two callbacks on our server: a customer's reply, and delivery reports.

Kolmeya signs nothing: the channel's secret in the URL authenticates the call, and a JWT too when
the channel has one configured. The raw body is stored before it is applied; a malformed one is
kept in the event log and answered with a 4xx that says what is wrong.
"""

from __future__ import annotations

from contact_center.channels.service import WebhookChannel
from contact_center.errors import NotAuthenticated
from contact_center.messaging.inbound import ReplyIn
from contact_center.webhooks import events, service
from contact_center.webhooks.desk import Callback
from contact_center.webhooks.jwt import verify_hs256
from contact_center.webhooks.writer import RejectedIn, StatusIn


async def _channel(callback: Callback) -> WebhookChannel:
    channel = await callback.channel_by_token()
    if channel.jwt_secret:
        scheme, _, jwt = callback.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not jwt:
            raise NotAuthenticated("this channel requires a JWT in 'Authorization: Bearer <jwt>'")
        verify_hs256(jwt.strip(), channel.jwt_secret)
    return channel


async def status(callback: Callback) -> dict:
    """Delivery reports, parsed by the writer: a malformed body is kept there, and raised here."""
    raw = await callback.body()
    writer = callback.writer()
    channel = await _channel(callback)
    result = await writer.submit(StatusIn(f"{channel.provider}.status", channel, raw))
    return {"status": "success", "applied": result.count("applied"), "pending": result.count("pending"),
            "ignored": result.count("ignored"), "duplicates": result.duplicates}


async def reply(callback: Callback) -> dict:
    raw = await callback.body()
    writer = callback.writer()
    channel = await _channel(callback)
    spec = callback.accepted[channel.provider]
    source = f"{spec.name}.reply"
    try:
        parsed = service.parse(spec.parse_reply, raw)
    except service.PayloadRejected as error:
        await writer.submit(RejectedIn(source, channel, raw, error.message))
        raise
    out = await writer.submit(ReplyIn(source, channel.id, parsed, events.raw_text(raw)))
    body = {"status": "success", "duplicate": out.outcome == "duplicate"}
    if out.message_id is not None:
        body["sms_id"] = out.message_id
    if out.outcome == "rejected":
        raise service.PayloadRejected(out.detail or "the reply could not be recorded", field="phone")
    return body
