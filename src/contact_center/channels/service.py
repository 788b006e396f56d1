"""Channels: which provider account sends and receives, with its write-only credentials."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.audit.service import record
from contact_center.channels.kinds import kind_of
from contact_center.channels.models import Channel
from contact_center.db import utcnow
from contact_center.translations import Words, as_words, say_stored, store
from contact_center.translations.validation import Problem
from contact_center.errors import Conflict, InvalidInput, NotFound, NotAuthenticated
from contact_center.logs import register_secret
from contact_center.metrics.instruments import CountedProvider
from contact_center.providers.base import ProviderSpec
from contact_center.providers.registry import PROVIDERS

log = logging.getLogger(__name__)


def provider_spec(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise InvalidInput("unknown provider '{name}'; available: {providers}", field="provider", name=name,
                           providers=", ".join(sorted(PROVIDERS))) from None


def _validated_settings(spec: ProviderSpec, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return spec.parse_settings(raw).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        # A rule across fields (a model validator) names the field to fix in its context.
        where = ".".join(str(part) for part in first["loc"]) or (first.get("ctx") or {}).get("field", "")
        raise InvalidInput("settings.{where}: {problem}", field=f"settings.{where}", where=where,
                           problem=Problem(first)) from None


def _validated_credentials(spec: ProviderSpec, current: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    known = set(spec.required_credentials) | set(spec.optional_credentials)
    merged = dict(current)
    for name, value in changes.items():
        if name not in known:
            raise InvalidInput("{provider} has no credential '{name}'; it takes {known}", field=f"credentials.{name}",
                               provider=spec.name, name=name, known=", ".join(sorted(known)))
        if value is None or not str(value).strip():
            merged.pop(name, None)  # an empty value clears an optional credential
        else:
            merged[name] = str(value).strip()
    missing = [name for name in spec.required_credentials if not merged.get(name)]
    if missing:
        raise InvalidInput("{provider} needs {missing}", field=f"credentials.{missing[0]}", provider=spec.label,
                           missing=", ".join(missing))
    for value in merged.values():
        register_secret(value)
    return merged


def _check_number_free(session: Session, spec: ProviderSpec, settings: dict[str, Any], channel_id: int | None) -> None:
    """One WhatsApp number, one channel: the callback URL tells channels apart by the number."""
    number = settings.get("phone_number_id")
    if spec.kind != "whatsapp" or not number:
        return
    for other in session.scalars(select(Channel).where(Channel.kind == "whatsapp")):
        if other.id != channel_id and (other.settings or {}).get("phone_number_id") == number:
            raise Conflict("channel '{other_name}' already uses phone_number_id {number}",
                           other_name=other.name, number=number,
                           field="settings.phone_number_id")


def _check_reminder(session: Session, spec: ProviderSpec, settings: dict[str, Any], channel_id: int | None) -> None:
    """A WhatsApp reminder template must be one of the channel's synced templates that a reminder can fill."""
    if spec.kind == "whatsapp":
        from contact_center.messaging.window_reminder import check_settings  # it reads the channel's templates

        check_settings(session, channel_id, settings)


def create_channel(
    session: Session, *, name: str, provider: str, credentials: dict[str, str | None] | None = None,
    settings: dict[str, Any] | None = None, actor_id: int | None = None, via: str = "api",
) -> Channel:
    spec = provider_spec(provider)
    name = name.strip()
    if not name:
        raise InvalidInput("a channel needs a name", field="name")
    clean_settings = _validated_settings(spec, settings or {})
    generated = {name: secrets.token_urlsafe(24) for name in spec.generated_credentials
                 if not (credentials or {}).get(name)}
    clean_credentials = _validated_credentials(spec, {}, {**(credentials or {}), **generated})
    if session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
        raise Conflict("a channel named '{name}' already exists", name=name, field="name")
    _check_number_free(session, spec, clean_settings, None)
    _check_reminder(session, spec, clean_settings, None)
    channel = Channel(name=name, kind=spec.kind, provider=spec.name, settings=clean_settings,
                      credentials=clean_credentials, webhook_secret=secrets.token_urlsafe(24), active=True)
    session.add(channel)
    session.flush()
    record(session, action="channel.create", subject_type="channel", subject_id=channel.id, actor_id=actor_id,
           via=via, name=name, provider=provider, settings=clean_settings,
           credentials_set=sorted(clean_credentials))
    forget_whatsapp_numbers()
    log.info("channel %s created (%s)", name, provider)
    return channel


def update_channel(
    session: Session, channel: Channel, *, name: str | None = None, credentials: dict[str, str | None] | None = None,
    settings: dict[str, Any] | None = None, active: bool | None = None, actor_id: int | None = None, via: str = "api",
) -> Channel:
    spec = provider_spec(channel.provider)
    new_settings = _validated_settings(spec, {**channel.settings, **settings}) if settings is not None else None
    new_credentials = (_validated_credentials(spec, channel.credentials, credentials)
                       if credentials is not None else None)
    if name is not None and name.strip() != channel.name:
        if session.scalar(select(Channel.id).where(Channel.name == name.strip())) is not None:
            raise Conflict("a channel named '{name}' already exists", field="name", name=name.strip())
        channel.name = name.strip()
    if new_settings is not None:
        _check_number_free(session, spec, new_settings, channel.id)
        _check_reminder(session, spec, new_settings, channel.id)
        channel.settings = new_settings
    if new_credentials is not None:
        channel.credentials = new_credentials
    if active is not None:
        channel.active = active
    if channel.paused_at is not None and (credentials is not None or settings is not None or active):
        # What paused it was the account's: an admin who changed it gets the channel back.
        log.info("channel %s resumed (was paused: %s)", channel.name, say_stored(channel.paused_reason, None))
        channel.paused_at, channel.paused_reason = None, None
    session.flush()
    forget_webhook_secret(channel.webhook_secret)
    record(session, action="channel.update", subject_type="channel", subject_id=channel.id, actor_id=actor_id,
           via=via, name=channel.name, settings=channel.settings, active=channel.active,
           credentials_changed=sorted(credentials or {}))
    return channel


def pause_channel(session: Session, channel: Channel, refusal: Words | str | None) -> None:
    """Nothing goes out on the channel until an admin changes it (credentials, settings, or
    reactivating it): the provider refuses the account itself (`refusal`: how it said so). The
    reason is kept to be said in each reader's language; the audit log and the live event say it
    as the code writes it."""
    from contact_center.events import announce

    if channel.paused_at is None:
        reason = Words("{reason} — channel paused: nothing is sent until an administrator fixes the account or the "
                       "credentials", reason=as_words(refusal or Words("the provider refused the account")))
        channel.paused_at, channel.paused_reason = utcnow(), store(reason)
        record(session, action="channel.pause", subject_type="channel", subject_id=channel.id, via="system",
               reason=reason)
        announce(session, "channel.paused", channel_id=channel.id, reason=str(reason))


def queued_message_ids(session: Session, channel_id: int) -> list[int]:
    from contact_center.messaging.models import WAITING, Message

    # Through ix_messages_waiting, whose condition this states: not every message of the channel.
    return list(session.scalars(select(Message.id).where(Message.channel_id == channel_id, Message.status == "queued",
                                                         WAITING)))


def rotate_webhook_secret(session: Session, channel: Channel, actor_id: int | None = None, via: str = "api") -> Channel:
    forget_webhook_secret(channel.webhook_secret)
    channel.webhook_secret = secrets.token_urlsafe(24)
    session.flush()
    record(session, action="channel.rotate_webhook_secret", subject_type="channel", subject_id=channel.id,
           actor_id=actor_id, via=via)
    return channel


def get_channel(session: Session, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound("no channel with id {channel_id}", channel_id=channel_id)
    return channel


def get_channel_by_name(session: Session, name: str) -> Channel:
    channel = session.scalar(select(Channel).where(Channel.name == name))
    if channel is None:
        raise NotFound("no channel named '{name}'", name=name)
    return channel


def list_channels(session: Session) -> list[Channel]:
    return list(session.scalars(select(Channel).order_by(Channel.id)))


def default_channel(session: Session, kind: str) -> Channel:
    """The first active channel of this kind (sms, whatsapp)."""
    channel = session.scalar(
        select(Channel).where(Channel.kind == kind, Channel.active.is_(True)).order_by(Channel.id).limit(1)
    )
    if channel is None:
        raise NotFound("no active {label} channel; create one with `contact-center channels create`",
                       label=kind_of(kind).label)
    return channel


@dataclass(frozen=True)
class WebhookChannel:
    """What a callback needs to know of its channel; cached briefly, as every callback asks."""

    id: int
    name: str
    provider: str
    jwt_secret: str | None
    # WhatsApp: the app secret its callbacks are signed with, and the verify token of the handshake.
    app_secret: str | None = None
    verify_token: str | None = None
    account_id: str | None = None  # WhatsApp's business account (template reviews name only it)


UNKNOWN_WEBHOOK_TOKEN = ("unknown webhook token: copy the channel's webhook URL again "
                         "(`contact-center channels webhooks NAME`); rotating the secret changes it")
_webhook_cache: dict[str, tuple[float, WebhookChannel]] = {}
# A rotated secret stops matching within this. A deactivated channel keeps receiving callbacks:
# delivery reports and replies for what it sent before still arrive.
WEBHOOK_CACHE_SECONDS = 5.0


def channel_for_webhook(session: Session, secret: str) -> WebhookChannel:
    """The channel whose callback URL carries this secret (after cached_webhook_channel missed);
    401 when unknown."""
    row = session.execute(select(Channel.id, Channel.name, Channel.provider, Channel.credentials)
                          .where(Channel.webhook_secret == secret)).first()
    if row is None:
        raise NotAuthenticated(UNKNOWN_WEBHOOK_TOKEN)
    channel = WebhookChannel(row.id, row.name, row.provider, (row.credentials or {}).get("webhook_jwt_secret"))
    # Registered here, where every process reads them: the URL's secret is in the access log lines.
    register_secret(secret)
    register_secret(channel.jwt_secret)
    _webhook_cache[secret] = (time.monotonic(), channel)
    return channel


_numbers_cache: tuple[float, dict[str, WebhookChannel]] | None = None


def whatsapp_numbers(session: Session) -> dict[str, WebhookChannel]:
    """phone_number_id → its channel, for the WhatsApp channels (one callback URL serves them all,
    told apart by the number each event is for). Cached as briefly as the token lookups."""
    global _numbers_cache
    cached = cached_whatsapp_numbers()
    if cached is not None:
        return cached
    numbers = {}
    for channel in session.scalars(select(Channel).where(Channel.kind == "whatsapp").order_by(Channel.id)):
        number = (channel.settings or {}).get("phone_number_id")
        credentials = channel.credentials or {}
        register_secret(credentials.get("app_secret"))
        register_secret(credentials.get("access_token"))
        if number and number not in numbers:
            numbers[number] = WebhookChannel(channel.id, channel.name, channel.provider, None,
                                             credentials.get("app_secret"), credentials.get("verify_token"),
                                             (channel.settings or {}).get("waba_id"))
    _numbers_cache = (time.monotonic(), numbers)
    return numbers


def cached_whatsapp_numbers() -> dict[str, WebhookChannel] | None:
    """whatsapp_numbers while its cache is fresh, without a session; None once it must be read."""
    if _numbers_cache is not None and time.monotonic() - _numbers_cache[0] < WEBHOOK_CACHE_SECONDS:
        return _numbers_cache[1]
    return None


def forget_whatsapp_numbers() -> None:
    global _numbers_cache
    _numbers_cache = None


def cached_webhook_channel(secret: str) -> WebhookChannel | None:
    cached = _webhook_cache.get(secret)
    if cached is not None and time.monotonic() - cached[0] < WEBHOOK_CACHE_SECONDS:
        return cached[1]
    return None


def forget_webhook_secret(secret: str) -> None:
    _webhook_cache.pop(secret, None)
    forget_whatsapp_numbers()


def webhook_urls(channel: Channel, public_base_url: str) -> dict[str, str]:
    """Each callback URL of the channel, by what it receives (reply, status…)."""
    return {route.name: f"{public_base_url}{route.path}" + (f"?token={channel.webhook_secret}" if route.per_channel else "")
            for route in provider_spec(channel.provider).webhooks}


def build_provider(channel: Channel, app_settings):
    for value in (channel.credentials or {}).values():
        register_secret(value)  # a worker process never saw them written
    return CountedProvider(provider_spec(channel.provider).build(channel, app_settings), channel.provider)
