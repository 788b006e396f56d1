"""A channel's health as operators see it: can we reach the provider, and what is the balance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider
from contact_center.money import format_brl
from contact_center.providers.base import ProviderError, supports
from contact_center.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelState:
    ok: bool
    balance: Decimal | None
    error: str | None

    @property
    def balance_text(self) -> str | None:
        return None if self.balance is None else format_brl(self.balance)


def channel_status(channel: Channel, settings: Settings) -> ChannelState:
    """Ask the provider for the balance; an unreachable or misconfigured provider is reported, not raised."""
    provider = build_provider(channel, settings)
    try:
        if not supports(provider, "balance"):
            return ChannelState(ok=True, balance=None, error=None)
        return ChannelState(ok=True, balance=provider.balance(), error=None)
    except ProviderError as exc:
        log.warning("channel %s: status check failed: %s", channel.name, exc)
        return ChannelState(ok=False, balance=None, error=str(exc))
    finally:
        provider.close()
