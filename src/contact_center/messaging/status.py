"""A channel's health as operators see it: can we reach the provider, what is the balance (SMS),
the number's name, quality and tier (WhatsApp), and is the channel paused."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from contact_center.channels.models import Channel
from contact_center.channels.service import build_provider
from contact_center.money import format_brl
from contact_center.providers.base import ProviderError, supports
from contact_center.settings import Settings
from contact_center.translations import say_stored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelState:
    ok: bool
    balance: Decimal | None
    error: str | None
    details: dict[str, str] = field(default_factory=dict)  # what the provider says of the account, labelled
    paused_reason: str | None = None  # the channel is paused (a revoked token…): nothing goes out

    @property
    def balance_text(self) -> str | None:
        return None if self.balance is None else format_brl(self.balance)


def channel_status(channel: Channel, settings: Settings, lang: str | None = None) -> ChannelState:
    """Ask the provider for the balance; an unreachable or misconfigured provider is reported, not
    raised. Why the channel is paused or unreachable is said in `lang`."""
    provider = build_provider(channel, settings)
    paused = say_stored(channel.paused_reason, lang) if channel.paused_at is not None else None
    try:
        balance = provider.balance() if supports(provider, "balance") else None
        details = provider.account() if supports(provider, "account") else {}
        return ChannelState(ok=paused is None, balance=balance, error=paused, details=details, paused_reason=paused)
    except ProviderError as exc:
        log.warning("channel %s: status check failed: %s", channel.name, exc)
        return ChannelState(ok=False, balance=None, error=say_stored(exc.reason, lang), paused_reason=paused)
    finally:
        provider.close()
