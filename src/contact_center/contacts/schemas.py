from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from contact_center.db import Id


class ContactFields(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(None, max_length=64, description="As written; any Brazilian or + international form.")
    mobile: str | None = Field(None, max_length=64)
    email: EmailStr | None = None
    document: str | None = Field(None, max_length=20, description="CPF, with or without dots and dash.")
    notes: str | None = Field(None, max_length=10_000)
    opt_out_sms: bool = False
    opt_out_whatsapp: bool = False
    tags: list[str] = Field([], max_length=50, description="Free text; matched ignoring case and accents.")
    fields: dict[str, Any] | None = Field(
        None, description="Values of the fields the business defined (GET /api/contact-fields), by key; "
        "money as 1.234,56 or 1234.56, dates as 15/11/2025 or 2025-11-15, booleans as true/false or sim/não.")


class ContactCreate(ContactFields):
    create_anyway: bool = Field(False, description="Create it even when another contact has one of its phones "
                                "(a 409 duplicate_contact names that contact otherwise). A CPF is never shared.")


class ContactUpdate(BaseModel):
    """Only the fields sent change; send null to clear an optional field."""

    name: str | None = Field(None, min_length=1, max_length=200)
    phone: str | None = Field(None, max_length=64)
    mobile: str | None = Field(None, max_length=64)
    email: EmailStr | None = None
    document: str | None = Field(None, max_length=20)
    notes: str | None = Field(None, max_length=10_000)
    opt_out_sms: bool | None = None
    opt_out_whatsapp: bool | None = None
    tags: list[str] | None = Field(None, max_length=50, description="The contact's tags become exactly these; "
                                   "[] or null removes them all.")
    fields: dict[str, Any] | None = Field(None, description="Only the keys sent change; null or \"\" clears one.")


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    phone: str | None
    phone_e164: str | None
    mobile: str | None
    mobile_e164: str | None
    email: str | None
    document: str | None
    notes: str | None
    opt_out_sms: bool
    opt_out_whatsapp: bool
    tags: list[str]
    fields: dict[str, Any] = Field(description="The business's fields that have a value: money as a decimal "
                                   "string, dates as YYYY-MM-DD.")
    created_at: datetime
    updated_at: datetime


class ContactPage(BaseModel):
    items: list[ContactOut]
    total: int
    total_is_lower_bound: bool = Field(False, description="Filtered on fields, the count stops at 1,000: "
                                       "true when more contacts match than `total`.")
    offset: int
    limit: int


class TagCount(BaseModel):
    name: str
    contacts: int


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other_id: Id = Field(description="The contact merged into this one, and removed.")


class MergePlanOut(BaseModel):
    """What merging `other_id` into `survivor_id` does (GET) or did (POST)."""

    survivor_id: int
    survivor_name: str
    other_id: int
    other_name: str
    taken: dict[str, str] = Field(description="Fields the survivor had empty and takes from the other.")
    not_kept: dict[str, str] = Field(description="The other's values that differ from the survivor's own, "
                                     "which stay (the audit entry keeps them).")
    opt_outs_gained: list[str]
    messages: int
    conversations: int
    conversations_joined: int = Field(description="Conversations on a channel where the survivor has one: "
                                      "their messages join the older conversation.")
    rows: dict[str, int] = Field(description="Rows of per-contact tables (tags, identifiers…) that move.")


class MergeOut(MergePlanOut):
    contact: ContactOut


class DuplicateMember(BaseModel):
    id: int
    name: str


class DuplicateGroupOut(BaseModel):
    reason: str = Field(description="phone (the same number in any phone field, any written form), email, or "
                        "wa_id (WhatsApp knows one of them by the other's number).")
    value: str
    contacts: list[DuplicateMember]


class DuplicatePage(BaseModel):
    groups: list[DuplicateGroupOut]
    next_after: str | None = Field(description="Pass it as `after` for the next page; null on the last.")
class ContactFieldCreate(BaseModel):
    key: str = Field(description="Lowercase letters, digits and _, starting with a letter (valor_parcela); "
                     "templates read it as contact.<key>.")
    label: str = Field(description="What operators read (Valor da parcela).")
    type: str = Field(description="text, integer, money, date, boolean or choice.")
    choices: list[str] | None = Field(None, description="The options of a choice field.")
    position: int | None = Field(None, description="Order on the contact panel; last by default.")


class ContactFieldUpdate(BaseModel):
    label: str | None = None
    choices: list[str] | None = None
    position: int | None = None


class ContactFieldOut(BaseModel):
    id: int
    key: str
    label: str
    type: str
    choices: list[str] | None
    position: int
    values: int = Field(description="How many contacts hold a value of this field.")


class ContactFieldRemoved(BaseModel):
    key: str
    values_removed: int
