from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contact_center.db import Id
from contact_center.errors import InvalidValue


class AudienceIn(BaseModel):
    """Who a bulk send goes to: exactly one of these."""

    contact_ids: list[Id] | None = Field(None, max_length=1_000_000)
    search: str | None = Field(None, description="Every contact matching this (name, CPF, phone); '' for all.")
    csv: str | None = Field(None, description="CSV text with a phone column (and optionally name).")
    tag: str | None = Field(None, max_length=50, description="Every contact with this tag (any case or accents).")

    @property
    def audience(self) -> dict:
        return {"contact_ids": self.contact_ids, "search": self.search, "csv": self.csv, "tag": self.tag}


class CampaignIn(AudienceIn):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    channel_id: Id
    body: str | None = Field(None, max_length=5000)
    template_id: Id | None = None
    whatsapp_template_id: Id | None = Field(None, description="WhatsApp: the synced approved template it sends.")
    parameters: dict | None = Field(None, description='WhatsApp: its parameters, each a template of contact '
                                    'fields: {"body": ["{{ contact.first_name }}", "{{ contact.document }}"]}, '
                                    'named {"body": {"nome": "..."}}, "header", "buttons": {"0": "..."}.')
    starts_at: datetime | None = Field(None, description="When it may begin (with a time zone); none: when started.")
    send_window: dict | None = Field(None, description='{"timezone": "America/Sao_Paulo", "days": {"mon": '
                                     '{"start": "08:00", "end": "20:00"}, ...}, "blocked_dates": ["2026-12-25"]}; '
                                     "none: Monday–Friday 08:00–20:00 and Saturday 08:00–14:00, Brasília time.")
    per_minute: int | None = Field(None, description="Throughput cap: messages released a minute at most.")
    start: bool = Field(False, description="Run as soon as its recipients are stored.")

    @model_validator(mode="after")
    def _one_body(self):
        if sum(x is not None for x in (self.body, self.template_id, self.whatsapp_template_id)) != 1:
            raise InvalidValue("give exactly one of 'body', 'template_id' (SMS) and 'whatsapp_template_id' (WhatsApp)")
        if self.starts_at is not None and self.starts_at.tzinfo is None:
            raise InvalidValue("starts_at needs a time zone, e.g. 2026-12-02T08:00:00-03:00")
        return self


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    channel_id: int
    status: str
    body_template: str
    whatsapp_template_id: int | None
    template_parameters: dict | None
    starts_at: datetime | None
    send_window: dict | None
    per_minute: int | None
    total: int
    skipped: int
    skip_reasons: dict | None
    cancelled: int
    waiting_reason: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: dict[str, int] = {}  # see campaigns.service.progress
    by_status: dict[str, int] = {}  # the messages' own statuses
    delivery_rate: float | None = None  # delivered or read / sent, delivered, read or failed
    reply_rate: float | None = None  # replied / sent, delivered or read


class CampaignPage(BaseModel):
    items: list[CampaignOut]


class PreviewOut(BaseModel):
    recipients: int
    sendable: int
    skipped: dict[str, int]
    skip_examples: list[dict]
    segments: int
    estimated_cost: Decimal | None
    balance: Decimal | None
    balance_error: str | None
    enough_balance: bool | None
    preview: list[dict]
