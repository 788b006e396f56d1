from __future__ import annotations

from pydantic import BaseModel, Field


class ErasureIn(BaseModel):
    reason: str = Field(..., max_length=500, description="Why: e.g. the customer's request by email, its protocol.")
    requested_by: str = Field(..., max_length=500, description="Who asked: the customer, their lawyer, the DPO…")


class ErasureOut(BaseModel):
    contact_id: int
    erased: dict[str, int]  # what was erased, counted: messages, conversations, media_files…
