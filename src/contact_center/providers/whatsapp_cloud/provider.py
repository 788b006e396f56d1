"""WhatsApp Cloud behind the Provider protocol, and its entries for the provider registry.

A send is one message per request (the Graph API has no batches). Our message reference travels
as `biz_opaque_callback_data`, so statuses find the message even before the send's answer is
stored. The wa_id WhatsApp answers with (`contacts[].wa_id`) is returned as the recipient id:
the ground truth for Brazil's ninth digit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contact_center.providers.base import (
    FetchedMedia, OutgoingMessage, ProviderSpec, RateBudget, SendOutcome, SendResult, StatusUpdate,
)
from contact_center.webhooks.desk import WebhookRoute

from .client import DEFAULT_API_VERSION, DEFAULT_BASE_URL, GraphClient
from .errors import classify, reason_for
from .webhooks import StatusEvent, parse

if TYPE_CHECKING:
    from contact_center.channels.models import Channel
    from contact_center.settings import Settings

SANDBOX_TOKEN = "sandbox-token"
SANDBOX_BASE_URL = "http://127.0.0.1:8901"  # where `contact-center sandbox whatsapp` listens by default
HELD = {"held_for_quality_assessment": "Retida pela Meta para avaliação de qualidade: ainda não enviada",
        "paused": "Retida pela Meta (envios pausados para este número): ainda não enviada"}


class WhatsAppSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number_id: str = Field(pattern=r"^\d{1,32}$", description="The number's id at Meta (WhatsApp Manager).")
    waba_id: str = Field(pattern=r"^\d{1,32}$", description="The WhatsApp Business Account id: its templates.")
    api_version: str = Field(DEFAULT_API_VERSION, pattern=r"^v\d{1,3}\.\d{1,2}$", description="Graph API version.")
    base_url: str = Field(DEFAULT_BASE_URL, pattern=r"^https?://", description="Only changed for the sandbox.")
    timeout_seconds: float = Field(15.0, gt=0, le=120)
    # Meta's throughput limit of a business number: 80 a second by default, raised up to 1,000
    # (20 for a number shared with the WhatsApp Business app). One message is one request.
    max_messages_per_second: int = Field(80, ge=1, le=1000,
                                         description="Messages per second all workers together send this number.")
    # When a message cannot go by WhatsApp (undeliverable, or the window closed with no template):
    # off, offer the operator the same text by SMS, or send it by SMS at once.
    sms_fallback: str = Field("offer", pattern=r"^(off|offer|send)$",
                              description="off | offer | send: the same text by SMS when WhatsApp cannot deliver.")
    # The window-closing reminder (messaging/window_reminder.py): off unless switched on; when on,
    # either a text or an approved template (checked against the synced ones when saved).
    window_reminder: bool = Field(False, description="Remind a customer whose question is unanswered before the "
                                                     "24-hour window closes.")
    window_reminder_minutes: int = Field(60, ge=5, le=1380, description="How many minutes before the window "
                                                                        "closes the reminder goes (5 to 1380).")
    window_reminder_text: str | None = Field(None, max_length=4096, description="The reminder as free text.")
    window_reminder_template: str | None = Field(None, max_length=512,
                                                 description="Or an approved template's name (no parameters, or "
                                                             "one body parameter: the contact's first name).")
    window_reminder_language: str | None = Field(None, max_length=16, description="The template's language, "
                                                                                  "e.g. pt_BR.")

    @field_validator("window_reminder_text", "window_reminder_template", "window_reminder_language", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        # `-s window_reminder_text=` (or an emptied form field) clears it.
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _reminder_says_what_to_send(self):
        # A rule across fields has no location of its own: ctx["field"] names the one to fix.
        def problem(field: str, message: str):
            return PydanticCustomError("window_reminder", message, {"field": field})

        if self.window_reminder_template and not self.window_reminder_language:
            raise problem("window_reminder_language", "give the language of the reminder template, e.g. pt_BR")
        if not self.window_reminder:
            return self
        if self.window_reminder_text and self.window_reminder_template:
            raise problem("window_reminder_text", "the reminder is either a text or a template, not both: clear "
                                                  "window_reminder_text or window_reminder_template")
        if not (self.window_reminder_text or self.window_reminder_template):
            raise problem("window_reminder_text", "the reminder is on but says nothing: give window_reminder_text "
                                                  "or window_reminder_template (with window_reminder_language)")
        return self


class SandboxSettings(WhatsAppSettings):
    # A sandbox channel must never reach Meta, whatever token it is given.
    base_url: str = Field(SANDBOX_BASE_URL, pattern=r"^http://(127\.0\.0\.1|localhost)(:\d+)?(/|$)",
                          description="The local sandbox (contact-center sandbox whatsapp).")


class WhatsAppProvider:
    max_batch = 1

    def __init__(self, token: str, settings: WhatsAppSettings):
        self.settings = settings
        self.client = GraphClient(token, phone_number_id=settings.phone_number_id, waba_id=settings.waba_id,
                                  base_url=settings.base_url, api_version=settings.api_version,
                                  timeout=settings.timeout_seconds)
        self.longest_request_seconds = 4 * settings.timeout_seconds + 5
        self.rate_budget = RateBudget(settings.max_messages_per_second, 1.0)

    def send(self, messages: Sequence[OutgoingMessage], *, status_webhook_url: str | None,
             batch_reference: str) -> SendResult:
        [message] = messages
        response = self._send_one(message)
        held = HELD.get(response.message_status)
        outcome = SendOutcome(message.reference, True, response.wamid, "sent", held, recipient_id=response.wa_id)
        return SendResult(request_id=None, outcomes={message.reference: outcome})

    def _send_one(self, message: OutgoingMessage):
        to = message.user_id or message.phone.lstrip("+")
        content = message.content or {}
        if message.content_type == "template":
            return self.client.send_template(to, content["name"], content["language"], content.get("components"),
                                             callback_data=message.reference)
        if message.content_type in ("image", "document", "audio", "video", "sticker"):
            media = content.get("media") or {}
            media_id = media.get("media_id")
            if media_id is None and message.attachment is not None:
                media_id = self.client.upload_media(*message.attachment)  # "sent by id": uploaded first
            return self.client.send_media(to, message.content_type, media_id=media_id, caption=media.get("caption"),
                                          filename=media.get("filename") if message.content_type == "document" else None,
                                          reply_to=message.reply_to_provider_id, callback_data=message.reference)
        return self.client.send_text(to, message.body, reply_to=message.reply_to_provider_id,
                                     callback_data=message.reference)

    def account(self) -> dict[str, str]:
        info = self.client.phone_number()
        facts = {"Número": info.display_phone_number, "Nome exibido": info.verified_name,
                 "Qualidade": info.quality_rating, "Limite de mensagens": info.messaging_limit_tier}
        return {label: value for label, value in facts.items() if value}

    def templates(self) -> Iterator[dict[str, Any]]:
        return self.client.templates()

    def fetch_media(self, media_id: str, max_bytes: int) -> FetchedMedia:
        info = self.client.media_info(media_id)  # its URL lasts 5 minutes: fetched at once
        return FetchedMedia(self.client.download(info.url, max_bytes=max_bytes), info.mime_type, info.sha256)

    def mark_read(self, provider_message_id: str) -> None:
        self.client.mark_read(provider_message_id)

    def close(self) -> None:
        self.client.close()


def _builder(settings_model: type[WhatsAppSettings]):
    def build(channel: Channel, _settings: Settings) -> WhatsAppProvider:
        return WhatsAppProvider(channel.credentials["access_token"], settings_model.model_validate(channel.settings))

    return build


def to_status_update(status: StatusEvent) -> StatusUpdate:
    error = status.errors[0] if status.errors else None
    return StatusUpdate(external_id=status.external_id, provider_message_id=status.wamid,
                        reference=status.callback_data, state=status.status,
                        code=error.code if error else None,
                        text=reason_for(error.code, error.details) if error else None,
                        pauses_channel=bool(error) and classify(error.code, None).kind == "pause_channel",
                        pauses_campaign=bool(error) and classify(error.code, None).kind == "pause_campaign")


def statuses(payload) -> Iterator[StatusUpdate]:
    """The statuses of a webhook body (its other events are the events handler's)."""
    return (to_status_update(event) for event in parse(payload).events if isinstance(event, StatusEvent))


WEBHOOKS = (
    WebhookRoute("GET", "/whatsapp/webhook", "callback", "contact_center.providers.whatsapp_cloud.callbacks:verify",
                 "Meta's subscription handshake", per_channel=False),
    WebhookRoute("POST", "/whatsapp/webhook", "callback", "contact_center.providers.whatsapp_cloud.callbacks:receive",
                 "Messages, statuses and account events, signed with the app secret", per_channel=False),
)

WHATSAPP_CLOUD = ProviderSpec(
    name="whatsapp_cloud", kind="whatsapp", label="WhatsApp Cloud API", settings_model=WhatsAppSettings,
    required_credentials=("access_token", "app_secret"), optional_credentials=("verify_token",),
    generated_credentials=("verify_token",),
    build=_builder(WhatsAppSettings), parse_statuses=statuses, webhooks=WEBHOOKS,
)

# The same API served by our local simulator (contact-center sandbox whatsapp): nothing leaves the machine.
WHATSAPP_SANDBOX = replace(WHATSAPP_CLOUD, name="whatsapp_sandbox", label="WhatsApp SANDBOX",
                           settings_model=SandboxSettings, build=_builder(SandboxSettings), sandbox=True)
