from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contact_center.contacts.schemas import ContactCreate, ContactUpdate
from contact_center.db import Id


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
    body: str = Field(min_length=1, max_length=1600)
    channel_id: Id | None = Field(None, description="Another channel to answer through; the conversation's own when omitted.")


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
