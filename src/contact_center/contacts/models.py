from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON, BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.db import Base, UTCDateTime, utcnow


class Contact(Base):
    """A customer. Each phone is kept as written and as E.164 plus a match key (see phones.py)."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    phone_key: Mapped[str | None] = mapped_column(String(20), index=True)
    mobile: Mapped[str | None] = mapped_column(String(64))
    mobile_e164: Mapped[str | None] = mapped_column(String(20))
    mobile_key: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)  # the duplicates report walks it
    # CPF, digits only; unique when present so imports can update by document.
    document: Mapped[str | None] = mapped_column(String(14), unique=True)
    notes: Mapped[str | None] = mapped_column(Text)
    # The Odoo res.partner this contact was synced from (odoo/sync.py): later syncs update it.
    odoo_partner_id: Mapped[int | None] = mapped_column(unique=True)
    opt_out_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    opt_out_whatsapp: Mapped[bool] = mapped_column(Boolean, default=False)
    # The customer told WhatsApp to stop marketing (user_preferences): marketing templates are not
    # sent; service and utility messages still are.
    opt_out_marketing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set by an LGPD erasure (privacy/erasure.py): the row left is a tombstone without personal data;
    # with its odoo_partner_id it keeps the partner sync from filling it (or a new contact) again.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Read-only here: contacts/tags.py writes them.
    tag_rows: Mapped[list[ContactTag]] = relationship(viewonly=True, lazy="selectin", order_by="ContactTag.id")

    @property
    def tags(self) -> list[str]:
        return [row.name for row in self.tag_rows]
    # The business's own fields (contacts/fields.py); loaded with their definition in one query.
    field_values: Mapped[list[ContactFieldValue]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ContactFieldValue.field_id")

    @property
    def fields(self) -> dict:
        """The business's fields of this contact by key, typed (what the API answers)."""
        from contact_center.contacts.fields import values_of

        return values_of(self)


IDENTIFIER_KINDS = ("wa_id", "wa_user_id", "wa_username")


class ContactIdentifier(Base):
    """An id a channel knows the contact by besides a phone: WhatsApp's wa_id (the phone as
    WhatsApp writes it, maybe without the ninth digit), its business-scoped user id, the username.
    A contact is found by any of them."""

    __tablename__ = "contact_identifiers"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


IMPORT_STATUSES = ("uploaded", "checking", "checked", "importing", "done", "failed")


class ContactImport(Base):
    """A CSV file uploaded on the contacts page, on its way through mapping, dry run and import.
    Both runs are jobs; the row carries their progress, so the page can be left and reopened."""

    __tablename__ = "contact_imports"
    __table_args__ = (
        CheckConstraint("status IN ('uploaded', 'checking', 'checked', 'importing', 'done', 'failed')",
                        name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(200))  # as uploaded, shown to the operator
    size_bytes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="uploaded")
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # CSV header -> our field or "-"
    delimiter: Mapped[str] = mapped_column(String(1))
    rows_total: Mapped[int | None] = mapped_column(Integer)  # known once the dry run has read the file
    rows_done: Mapped[int] = mapped_column(Integer, default=0)  # rows the running job has read
    dry_run: Mapped[dict | None] = mapped_column(JSON)  # the dry run's summary
    result: Mapped[dict | None] = mapped_column(JSON)  # the import's summary
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContactTag(Base):
    """A tag on a contact ("inadimplente", "VIP"), shown as first written and matched by its key
    (case, accents and spacing ignored: see contacts/tags.py, the one writer)."""

    __tablename__ = "contact_tags"
    __table_args__ = (
        UniqueConstraint("contact_id", "key"),
        Index("ix_contact_tags_key_contact", "key", "contact_id"),  # contacts with a tag
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
FIELD_TYPES = ("text", "integer", "money", "date", "boolean", "choice")


class ContactField(Base):
    """A field the business defines for its contacts (the amount due, the due date, the contract)."""

    __tablename__ = "contact_fields"
    __table_args__ = (CheckConstraint("type IN ('text', 'integer', 'money', 'date', 'boolean', 'choice')",
                                      name="type_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(8))
    choices: Mapped[list[str] | None] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactFieldValue(Base):
    """One contact's value of one field, in the column of its type so that range filters are served
    by an index on (field, value): integers, money (in cents) and booleans (0/1) in `number`, dates
    in `day`, text and choices in `text`."""

    __tablename__ = "contact_field_values"
    __table_args__ = (
        Index("ix_contact_field_values_number", "field_id", "number", "contact_id"),
        Index("ix_contact_field_values_day", "field_id", "day", "contact_id"),
        Index("ix_contact_field_values_text", "field_id", "text", "contact_id"),
        # SQLite: the rows live in the primary key's b-tree, so a contact's value is one look-up.
        {"sqlite_with_rowid": False},
    )

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("contact_fields.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int | None] = mapped_column(BigInteger)
    day: Mapped[date | None] = mapped_column(Date)
    text: Mapped[str | None] = mapped_column(String(500))
    field: Mapped[ContactField] = relationship(lazy="joined", innerjoin=True)
