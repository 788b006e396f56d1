from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from contact_center.providers.registry import is_sandbox_provider


class ChannelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    provider: str = Field(description="kolmeya, kolmeya_sandbox, whatsapp_cloud or whatsapp_sandbox")
    credentials: dict[str, str] = Field(default_factory=dict, description="Write-only: e.g. {'token': '…'}.")
    settings: dict[str, Any] = Field(default_factory=dict, description="e.g. {'segment_id': 109}")


class ChannelUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    credentials: dict[str, str | None] | None = Field(None, description="Only the keys sent change; null clears.")
    settings: dict[str, Any] | None = None
    active: bool | None = None


class ChannelOut(BaseModel):
    """A channel as the API shows it: credentials are never returned, only which ones are set."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    provider: str
    settings: dict[str, Any]
    active: bool
    created_at: datetime
    credentials: dict[str, str] = Field(exclude=True)

    @computed_field
    @property
    def credentials_set(self) -> list[str]:
        return sorted(self.credentials)

    @computed_field
    @property
    def sandbox(self) -> bool:
        return is_sandbox_provider(self.provider)


class WebhookUrls(BaseModel):
    """The callback URLs to paste at the provider, by what each receives (Kolmeya: reply, status;
    WhatsApp: callback, one for every number, with the verify token of Meta's handshake)."""

    model_config = ConfigDict(extra="allow")

    reply: str | None = None
    status: str | None = None
    callback: str | None = None
    verify_token: str | None = None


class WhatsAppTemplateOut(BaseModel):
    """A synced WhatsApp template, with what the composer needs to fill it in."""

    id: int
    name: str
    language: str
    status: str
    category: str
    status_reason: str | None
    sendable: bool
    parameter_format: str  # POSITIONAL | NAMED
    body_text: str
    body_parameters: list[str]  # "1", "2"… or the names
    header_format: str | None
    header_parameters: list[str]
    buttons: list[dict[str, Any]]
    synced_at: datetime


class TemplateSyncOut(BaseModel):
    added: int
    updated: int
    removed: int
    skipped: list[str]
