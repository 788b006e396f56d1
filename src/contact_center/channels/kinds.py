"""What differs between the kinds of channel (SMS, WhatsApp): messaging, campaigns and the inbox
ask the channel's kind instead of testing `kind == "sms"`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from contact_center.translations import Quantity, Words
from contact_center.errors import InvalidInput
from contact_center.messaging.segments import count_segments


@dataclass(frozen=True)
class Measure:
    """What a body costs on its kind of channel: its encoding and how many billed parts."""

    encoding: str | None
    segments: int


@dataclass(frozen=True)
class ChannelKind:
    name: str  # sms | whatsapp
    label: str  # as operators read it
    opt_out_field: str  # the contact's flag that stops messages of this kind
    max_body_characters: int
    counts_segments: bool  # SMS bill by 160/70-character parts; a WhatsApp message is one message
    # Free text only this long after the customer last wrote (WhatsApp's customer-service window);
    # None: any time.
    reply_window: timedelta | None
    bulk_free_text: bool  # may a bulk send be free text (else: approved templates only)
    reaches_user_ids: bool = False  # can write to a customer known only by the channel's user id (no phone)

    def opted_out(self, contact) -> bool:
        return contact is not None and bool(getattr(contact, self.opt_out_field))

    @property
    def opted_out_reason(self) -> Words:
        """Stored with the message (translations.store); the timeline says it in the reader's language."""
        return OPTED_OUT_REASONS[self.name]

    def measure(self, body: str) -> Measure:
        if not self.counts_segments:
            return Measure(None, 1)
        info = count_segments(body)
        return Measure(info.encoding, info.segments)

    def check_body(self, body: str, field: str = "body") -> str:
        """The body stripped, or InvalidInput saying why it cannot go out on this kind of channel."""
        body = (body or "").strip()
        if not body:
            raise InvalidInput("the message is empty", field=field)
        if len(body) > self.max_body_characters:
            raise InvalidInput("the message has {length} characters; the limit for {label} is {limit}", field=field,
                               length=Quantity(len(body)), label=self.label, limit=Quantity(self.max_body_characters))
        return body


# Why a message to a contact who opted out was stored as blocked, one sentence per kind.
OPTED_OUT_REASONS = {"sms": Words("not sent: the contact opted out of SMS"),
                     "whatsapp": Words("not sent: the contact opted out of WhatsApp")}
# A marketing template to a customer who told WhatsApp to stop marketing (user_preferences).
MARKETING_STOPPED = Words("not sent: the customer asked WhatsApp not to receive marketing messages")

SMS = ChannelKind(name="sms", label="SMS", opt_out_field="opt_out_sms",
                  max_body_characters=1600,  # ten concatenated parts; beyond that carriers split unreliably
                  counts_segments=True, reply_window=None, bulk_free_text=True)
WHATSAPP = ChannelKind(name="whatsapp", label="WhatsApp", opt_out_field="opt_out_whatsapp",
                       max_body_characters=4096, counts_segments=False, reply_window=timedelta(hours=24),
                       bulk_free_text=False, reaches_user_ids=True)
KINDS: dict[str, ChannelKind] = {kind.name: kind for kind in (SMS, WHATSAPP)}


def kind_of(channel) -> ChannelKind:
    """The kind of a channel (or of a channel's `kind` name)."""
    return KINDS[channel if isinstance(channel, str) else channel.kind]
