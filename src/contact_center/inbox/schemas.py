from __future__ import annotations

from typing import Any

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contact_center.contacts.schemas import ContactCreate, ContactUpdate
from contact_center.db import Id
from contact_center.messaging.schemas import AttemptOut
from contact_center.translations import say_stored


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    channel_id: int
    channel_name: str
    channel_kind: str
    contact_id: int | None
    contact_name: str | None
    phone_e164: str
    assignee_id: int | None
    assignee_name: str | None
    unread_count: int
    last_activity_at: datetime
    last_inbound_at: datetime | None
    window_closes_at: datetime | None = Field(None, description="WhatsApp: free text may be sent until then; "
                                                                 "afterwards only an approved template.")
    channel_paused_reason: str | None = Field(None, description="Set when the channel is paused: nothing is sent.")

    @field_validator("channel_paused_reason")
    @classmethod
    def _said(cls, stored: str | None) -> str | None:
        return say_stored(stored, None)  # kept as words (translations.store); said as the API writes
    last_body: str | None = None
    last_direction: str | None = None
    last_status: str | None = None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    total: int
    next_cursor: str | None = Field(description="Pass as `before` for the next page; null on the last one.")
    unread_total: int


class TimelineMessage(BaseModel):
    kind: Literal["message"] = "message"
    id: int
    conversation_id: int
    channel_id: int
    channel_name: str
    channel_kind: str
    direction: str
    origin: str
    body: str
    status: str
    status_reason: str | None
    segments: int
    author_name: str | None
    at: datetime
    content_type: str = "text"
    content: dict | None = None  # media (id, mime type, file name, caption…), place, choice, template…
    in_reply_to_id: int | None = None
    read_at: datetime | None = None
    played_at: datetime | None = None
    fallback_of_id: int | None = None  # the WhatsApp message this SMS was sent again for
    sms_fallback_available: bool = False  # a failed WhatsApp message the operator may send again by SMS
    attempt_history: list[AttemptOut] = []  # every try at sending it (outbound), oldest first


class TimelineEvent(BaseModel):
    kind: Literal["event"] = "event"
    id: int | None
    conversation_id: int
    change: str
    at: datetime
    actor_name: str | None
    assignee_name: str | None
    previous_assignee_name: str | None
    contact_name: str | None


class TimelineOut(BaseModel):
    entries: list[TimelineMessage | TimelineEvent]
    has_older: bool
    oldest_message_id: int | None


class Transfer(BaseModel):
    assignee_id: Id


class Compose(BaseModel):
    body: str = Field(min_length=1, max_length=4096, description="At most 1,600 characters on SMS, 4,096 on WhatsApp.")
    channel_id: Id | None = Field(None, description="Another channel to answer through; the conversation's own when omitted.")
    reply_to_message_id: Id | None = Field(None, description="WhatsApp: the customer's message this one answers (quoted).")


class ComposeTemplate(BaseModel):
    template_id: Id = Field(description="A synced WhatsApp template (GET /api/channels/{id}/whatsapp-templates).")
    parameters: dict[str, Any] = Field(default_factory=dict, description=(
        'Its parameters: {"body": ["Ana", "R$ 120,00"]} or, for named ones, {"body": {"first_name": "Ana"}}; '
        '"header" likewise, "header_media": {"type": "image", "id" | "link": …}, "buttons": {"0": "…"}.'))


class LinkContact(BaseModel):
    contact_id: Id


class NewContact(ContactCreate):
    pass


class ContactChanges(ContactUpdate):
    pass


class RenderTemplate(BaseModel):
    template_id: Id


class Rendered(BaseModel):
    text: str
    encoding: str
    segments: int


class QuickReplyIn(BaseModel):
    title: str = Field(min_length=1, max_length=60)
    body: str = Field(min_length=1, max_length=1600)


class QuickReplyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
