"""What every provider implements, and the registry the rest of the product looks them up in.

A new provider is a folder beside `kolmeya/` plus one entry in `PROVIDERS` (providers/registry.py):
messaging, webhooks and the inbox only ever speak this protocol.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import BaseModel

from contact_center.translations import Words

if TYPE_CHECKING:
    from contact_center.channels.models import Channel
    from contact_center.webhooks.desk import WebhookRoute
    from contact_center.settings import Settings


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """The certificate authorities every provider client verifies against, loaded once a process:
    a dispatch job builds its channel's client, and loading the bundle each time cost it more CPU
    than the request it sent."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class OutgoingMessage:
    reference: str  # our unique id for the message; travels to the provider and back
    phone: str  # E.164; empty for a WhatsApp customer who shares no phone (then `user_id`)
    body: str
    # What is not plain text (a WhatsApp template, a media file), as Message.content holds it.
    content_type: str = "text"
    content: dict | None = None
    reply_to_provider_id: str | None = None  # the customer's message this one answers, where quoting exists
    attachment: tuple[bytes, str, str] | None = None  # a file to upload first: (bytes, mime type, file name)
    user_id: str | None = None  # WhatsApp's business-scoped user id, for a customer known by nothing else


@dataclass(frozen=True)
class SendOutcome:
    reference: str
    accepted: bool
    provider_message_id: str | None
    state: str  # sent | rejected | blocked | unknown
    reason: Words | str | None  # words of ours (said in the reader's language) or the provider's own text
    duplicate: bool = False  # the provider says it already has this message (a retry after a crash)
    recipient_id: str | None = None  # who the provider says the number is (WhatsApp's wa_id), when it says


@dataclass(frozen=True)
class SendResult:
    request_id: str | None
    outcomes: dict[str, SendOutcome]  # by our reference


@dataclass(frozen=True)
class InboundReply:
    external_id: str  # unique per reply; the same callback replayed gives the same id
    phone: str
    text: str
    received_at: datetime | None
    in_reply_to_reference: str | None
    in_reply_to_provider_id: str | None
    # What is not plain text (`text` then holds what an operator reads for it): Message.content_type
    # and Message.content.
    content_type: str = "text"
    content: dict | None = None
    # Ids the channel knows the sender by besides the phone (contacts/identifiers.py: kind → value),
    # and the name the customer gave it. `phone` is empty for a WhatsApp user who shares none.
    identifiers: dict[str, str] | None = None
    profile_name: str | None = None
    new_identifiers: dict[str, str] | None = None  # ids the sender says are theirs from now on (a new number)


@dataclass(frozen=True)
class StatusUpdate:
    external_id: str  # provider message id + status: replays collide, successive statuses do not
    provider_message_id: str | None
    reference: str | None
    state: str  # sent | delivered | failed | rejected | expired | accepted (still at the provider)
    code: int | None
    text: Words | str | None  # a failure's reason: words of ours or the provider's own text
    pauses_channel: bool = False  # the failure is the account's (a revoked token…): see ProviderError
    pauses_campaign: bool = False  # the failure is the campaign's content (spam rate limit): see ProviderError
    # Where a status that came by no callback was read (a provider's report): kept in the message's reason.
    source: Words | None = None


@dataclass(frozen=True)
class ReportedStatus:
    """One line of a provider's status report (the `status_report` capability). It names no
    message: only the number, when it went, and the request that carried it as the report has it."""

    phone: str
    sent_at: datetime | None  # as the report has it (maybe only to the minute); None when unreadable
    state: str | None  # as StatusUpdate.state; None for a status whose words we do not know
    code: int | None
    text: str
    request_id: str | None  # the provider's id of the request (SendResult.request_id), if that is what it lists
    batch_reference: str | None  # ours for the request (the send's batch_reference), if that is what it lists


@dataclass(frozen=True)
class RateBudget:
    """How many requests the provider takes from one channel per `per_seconds` (messaging/rate_limit.py)."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class FetchedMedia:
    content: bytes
    mime_type: str | None
    sha256: str | None  # as the provider announced it, to be checked against the bytes


def describe_value(value: Any) -> str:
    """'a list [1, 2]', 'int 9', 'null': what came instead of what we expected, for payload errors."""
    if value is None:
        return "null"
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text[:80]}{'…' if len(text) > 80 else ''}"


class WebhookPayloadError(ValueError):
    """A callback body that is not what the provider sends; `field` says where."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class TooManyItems(WebhookPayloadError):
    """A callback carrying more items than the provider ever sends in one (answered 413): the
    work one callback can cause is bounded."""


class ProviderError(Exception):
    """A provider call failed. `retryable` errors (rate limit, 5xx, timeout) are tried again later.

    `outcome_unknown`: the request may have reached the provider and been carried out (a timeout
    after it was sent, a 5xx, an answer we cannot read). A send that fails so is never sent again
    before the provider has been asked whether it has the messages (messaging/reconcile.py)."""

    retryable: bool = False
    retry_after_seconds: float | None = None
    outcome_unknown: bool = False
    # The provider refuses the account itself (a revoked token, a blocked business): the channel is
    # paused for everyone instead of every queued message failing one by one.
    pauses_channel: bool = False
    # The limit hit is the whole number's or account's (HTTP 429, an app call-rate limit): what is
    # left of the dispatch waits too, instead of meeting the same refusal message after message.
    slows_channel: bool = False
    # The provider holds the content itself against the number (WhatsApp's spam rate limit): the
    # campaign sending it is paused with an alert, instead of spending the number's quality on it.
    pauses_campaign: bool = False
    opts_out: str | None = None  # the contact's flag the failure sets (a customer who stopped marketing)

    def __init__(self, message: str | Words = ""):
        super().__init__(str(message))  # str(error), for logs: as the code writes it
        self.words = message if isinstance(message, Words) else None

    @property
    def reason(self) -> Words | str:
        """What an operator reads on the message: the error's words (translations.Words, said in
        each reader's language) when it was raised with words, else its text."""
        return self.words or str(self)


class Provider(Protocol):
    """What every provider does: send a batch, and let go of its connections. What only some do is
    an optional capability (CAPABILITIES), asked with `supports`."""

    max_batch: int
    rate_budget: RateBudget  # shared by every worker sending on the channel

    def send(self, messages: Sequence[OutgoingMessage], *, status_webhook_url: str | None,
             batch_reference: str) -> SendResult:
        """`batch_reference` is ours for the request; `find_batch` asks about it by it."""

    def close(self) -> None: ...


CAPABILITIES = {
    "balance": "balance() -> Decimal: the account's credit (a channel's status check)",
    "message_status": "message_status(provider_message_id) -> StatusUpdate: one message's status (the poller)",
    "recent_replies": "recent_replies(hours) -> Iterator[InboundReply]: replies to recover (the poller)",
    "account": "account() -> dict[str, str]: what the provider says of the account, labelled (a channel's status check)",
    "templates": "templates() -> Iterator[dict]: the message templates approved at the provider, as it lists them",
    "fetch_media": "fetch_media(media_id, max_bytes) -> FetchedMedia: a file a customer sent (messaging/media.py)",
    "mark_read": "mark_read(provider_message_id): tell the customer their message was read (blue ticks)",
    "status_report": ("status_report(start_at, end_at) -> list[ReportedStatus]: every message the provider sent "
                      "in the window, whole (split into as many calls as it needs) (messaging/report_reconcile.py)"),
    "request_statuses": ("request_statuses(request_id) -> list[StatusUpdate]: each message of one request by the "
                         "provider's request id, exactly (messaging/report_reconcile.py, for report lines it cannot "
                         "tell apart)"),
    "blacklist_add": "blacklist_add(phones): the provider refuses to send to these numbers (an SMS opt-out)",
    "blacklist_remove": "blacklist_remove(phones): it may send to them again (an opt-out reversed)",
    "find_batch": ("find_batch(batch_reference) -> list[StatusUpdate] | None: what the provider has of the request "
                   "sent with this reference, None when it has no such request; ProviderError when it cannot tell "
                   "(messaging/reconcile.py: without it, a send with an unknown outcome waits for a delivery "
                   "report and is never sent again by itself)"),
}


def supports(provider: Provider, capability: str) -> bool:
    """Whether `provider` has the optional `capability` (one of CAPABILITIES)."""
    assert capability in CAPABILITIES, capability
    return callable(getattr(provider, capability, None))


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    kind: str
    label: str
    settings_model: type[BaseModel]
    required_credentials: tuple[str, ...]
    optional_credentials: tuple[str, ...]
    build: Callable[[Channel, Settings], Provider]
    # A pure function from a decoded JSON callback body to its statuses (the webhook writer parses
    # status callbacks itself); raises WebhookPayloadError naming the field. May be lazy (a
    # generator), the checks of the whole body coming first: a large callback is then read in turns.
    parse_statuses: Callable[[Any], Iterable[StatusUpdate]]
    # The callback URLs it has on our server (webhooks/desk.py).
    webhooks: tuple[WebhookRoute, ...] = ()
    sandbox: bool = False  # a local simulator of the provider: nothing leaves the machine
    # Optional credentials we make up when not given (WhatsApp's verify token), shown to the admin.
    generated_credentials: tuple[str, ...] = ()
    # A provider whose replies arrive one a callback (Kolmeya): the body's reply. Others parse their
    # callbacks in their own handlers.
    parse_reply: Callable[[Any], InboundReply] | None = None

    def parse_settings(self, raw: dict[str, Any]) -> BaseModel:
        return self.settings_model.model_validate(raw)


def bearer_token(token: str, where: str) -> str:
    """The token as pasted, with or without 'Bearer ', reduced to the token itself; ValueError
    saying `where` to copy it from when nothing is left."""
    cleaned = re.sub(r"^\s*bearer\s+", "", token or "", flags=re.IGNORECASE).strip()
    if not cleaned:
        raise ValueError(f"The token is empty; paste it from {where}.")
    return cleaned
