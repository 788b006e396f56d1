from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contact_center.campaigns.schemas import AudienceIn
from contact_center.db import Id
from contact_center.errors import InvalidValue
from contact_center.translations import say_stored


class SmsSend(BaseModel):
    to: str | None = Field(None, max_length=64, description="A phone in any written form…")
    contact_id: Id | None = Field(None, description="…or a contact (its mobile, else its phone).")
    body: str | None = Field(None, max_length=1600, description="The text…")
    template_id: Id | None = Field(None, description="…or a template rendered for the contact.")
    channel_id: Id | None = Field(None, description="The first active SMS channel when omitted.")

    @model_validator(mode="after")
    def _one_of_each(self):
        if (self.to is None) == (self.contact_id is None):
            raise InvalidValue("give exactly one of 'to' and 'contact_id'")
        if (self.body is None) == (self.template_id is None):
            raise InvalidValue("give exactly one of 'body' and 'template_id'")
        return self


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    reference: str
    channel_id: int
    conversation_id: int
    contact_id: int | None
    campaign_id: int | None
    direction: str
    origin: str
    phone_e164: str
    body: str
    status: str
    status_reason: str | None
    provider_message_id: str | None
    encoding: str | None
    segments: int
    attempts: int
    created_at: datetime
    queued_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    played_at: datetime | None = None
    failed_at: datetime | None
    received_at: datetime | None
    content_type: str = "text"
    content: dict | None = None
    fallback_of_id: int | None = None

    @classmethod
    def said(cls, message, lang: str | None) -> MessageOut:
        """The message with its reason (kept as words: translations.store) said in `lang`."""
        view = cls.model_validate(message)
        view.status_reason = say_stored(view.status_reason, lang)
        return view


class AttemptOut(BaseModel):
    """One try at sending a message: when, what came of it, why, and when the next one is due."""

    model_config = ConfigDict(from_attributes=True)

    number: int = Field(description="The message's attempt count this try was (a held try waits to be it).")
    started_at: datetime
    finished_at: datetime
    outcome: str = Field(description="sent | retry (queued again) | failed | unknown (the provider is asked "
                                     "before any resend) | held (not sent: the channel's rate limit or a pause)")
    http_status: int | None
    provider_code: int | None
    reason: str | None
    next_attempt_at: datetime | None = Field(description="The next try (retry, held) or question (unknown).")

    @classmethod
    def said(cls, attempt, lang: str | None) -> AttemptOut:
        view = cls.model_validate(attempt)
        view.reason = say_stored(view.reason, lang)
        return view


class BulkSend(AudienceIn):
    name: str = Field("Bulk send", max_length=200)
    channel_id: Id | None = None
    body: str | None = Field(None, max_length=5000)
    template_id: Id | None = None
    confirm: bool = Field(False, description="false: only preview and estimate. true: store and send.")

    @model_validator(mode="after")
    def _one_audience(self):
        if sum(x is not None for x in (self.contact_ids, self.search, self.csv, self.tag)) != 1:
            raise InvalidValue("give exactly one audience: 'contact_ids', 'search', 'csv' or 'tag'")
        if (self.body is None) == (self.template_id is None):
            raise InvalidValue("give exactly one of 'body' and 'template_id'")
        return self


class RejectedOut(BaseModel):
    where: str
    reason: str


class BulkPlanOut(BaseModel):
    recipients: int
    sendable: int
    opted_out: int
    segments: int
    estimated_cost: Decimal | None
    balance: Decimal | None
    balance_error: str | None
    enough_balance: bool | None
    preview: list[dict]
    rejected: list[RejectedOut]
    campaign_id: int | None = None


class ChannelStatus(BaseModel):
    channel_id: int
    name: str
    provider: str
    sandbox: bool
    ok: bool
    balance: Decimal | None
    balance_text: str | None
    error: str | None
    details: dict[str, str] = {}  # e.g. WhatsApp: Nome exibido, Qualidade, Limite de mensagens
    paused_reason: str | None = None
