"""Telling a customer their message was read (WhatsApp's blue ticks), when an operator opens the
conversation. Best effort: a failure is logged, never retried into a storm."""

from __future__ import annotations

import logging

from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider
from contact_center.db import transaction
from contact_center.providers.base import ProviderError, supports

log = logging.getLogger(__name__)


def send_read_receipt(session_factory, settings, channel_id: int, provider_message_id: str) -> bool:
    with transaction(session_factory) as session:
        channel = session.get(Channel, channel_id)
        if channel is None or channel.paused_at is not None:
            return False
        provider = build_provider(channel, settings)
    try:
        if not supports(provider, "mark_read"):
            return False
        provider.mark_read(provider_message_id)
        return True
    except ProviderError as exc:
        log.warning("channel %s: could not mark %s as read: %s", channel.name, provider_message_id, exc.reason)
        return False
    finally:
        provider.close()
