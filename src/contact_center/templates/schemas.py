from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contact_center.db import Id


class TemplateCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=5000, description="Jinja2; `contact`, `user` and `company` in scope.")
    description: str | None = Field(None, max_length=1000)


class TemplateUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    body: str | None = Field(None, min_length=1, max_length=5000)
    description: str | None = Field(None, max_length=1000)


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    body: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class TemplatePreviewRequest(BaseModel):
    contact_id: Id | None = Field(None, description="Render for this contact; a sample contact when omitted.")
    body: str | None = Field(None, max_length=5000, description="Preview unsaved text instead of the stored body.")


class SegmentsOut(BaseModel):
    encoding: str
    characters: int
    segments: int
    per_segment: int
    remaining: int


class TemplatePreview(BaseModel):
    text: str
    segments: SegmentsOut
