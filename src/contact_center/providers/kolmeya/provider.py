"""Kolmeya behind the Provider protocol (with every optional capability), and its entries for the provider registry."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from contact_center.providers.base import (
    InboundReply,
    OutgoingMessage,
    ProviderSpec,
    RateBudget,
    ReportedStatus,
    SendResult,
    StatusUpdate,
)
from contact_center.webhooks.desk import WebhookRoute

from .client import (
    DEFAULT_BASE_URL,
    DEFAULT_SEGMENT_ID,
    MAX_MESSAGES_PER_REQUEST,
    MAX_REPORT_ROWS,
    MAX_REPORT_WINDOW,
    KolmeyaClient,
    ReportRow,
)
from .webhooks import KolmeyaStatus, iter_statuses, parse_reply

if TYPE_CHECKING:
    from contact_center.channels.models import Channel
    from contact_center.settings import Settings

log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_BASE_URL = "http://127.0.0.1:8900/api/v1"  # where `contact-center sandbox kolmeya` listens by default


class KolmeyaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: int = Field(DEFAULT_SEGMENT_ID, ge=1, description="tenant_segment_id: the cost centre (109 = CORPORATIVO).")
    sms_api_id: int | None = Field(None, ge=1, description="From Kolmeya's /sms/apis; the account default when empty.")
    base_url: str = Field(DEFAULT_BASE_URL, pattern=r"^https?://", description="Only changed for the sandbox.")
    price_per_segment: Decimal | None = Field(None, ge=0, description="R$ per SMS segment, for cost estimates.")
    timeout_seconds: float = Field(15.0, gt=0, le=120)
    # Kolmeya counts a token's requests per window (1,000 seen by the seed, 500 reported elsewhere):
    # the lower figure, shared by every worker; one request carries up to 1,000 messages.
    max_requests_per_minute: int = Field(500, ge=1, le=100_000,
                                         description="Requests per minute all workers together send Kolmeya.")


class SandboxSettings(KolmeyaSettings):
    # A sandbox channel must never reach the real Kolmeya, whatever token it is given.
    base_url: str = Field(SANDBOX_BASE_URL, pattern=r"^http://(127\.0\.0\.1|localhost)(:\d+)?/",
                          description="The local sandbox (contact-center sandbox kolmeya).")


def to_status_update(status: KolmeyaStatus) -> StatusUpdate:
    return StatusUpdate(external_id=status.external_id, provider_message_id=status.provider_message_id,
                        reference=status.reference, state=status.state, code=status.code, text=status.text)


def to_reported_status(row: ReportRow) -> ReportedStatus:
    # Assumed, not verified (nobody has published what they are): a report row's `job` is the id
    # /sms/store answered for the request, and its `lote` the reference the request was sent with.
    # The matching (messaging/report_reconcile.py) works without either, by number and minute.
    return ReportedStatus(phone=row.phone, sent_at=row.sent_at, state=row.state, code=row.code, text=row.status,
                          request_id=row.job, batch_reference=row.lote)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class KolmeyaProvider:
    max_batch = MAX_MESSAGES_PER_REQUEST
    report_limit = MAX_REPORT_ROWS

    def __init__(self, token: str, settings: KolmeyaSettings):
        self.settings = settings
        self.client = KolmeyaClient(token, base_url=settings.base_url, timeout=settings.timeout_seconds)
        # The timeout holds for each of waiting for a connection, connecting, writing and reading.
        self.longest_request_seconds = 4 * settings.timeout_seconds + 5
        self.rate_budget = RateBudget(settings.max_requests_per_minute, 60.0)

    def send(self, messages: Sequence[OutgoingMessage], *, status_webhook_url: str | None,
             batch_reference: str) -> SendResult:
        return self.client.send(messages, segment_id=self.settings.segment_id, sms_api_id=self.settings.sms_api_id,
                                webhook_url=status_webhook_url, reference=batch_reference)

    def find_batch(self, batch_reference: str) -> list[StatusUpdate] | None:
        found = self.client.find_request(batch_reference)
        return None if found is None else [to_status_update(status) for status in found]

    def request_statuses(self, request_id: str) -> list[StatusUpdate]:
        return [to_status_update(status) for status in self.client.request_status(request_id)]

    def status_report(self, start_at: datetime, end_at: datetime) -> list[ReportedStatus]:
        """Every message Kolmeya sent from `start_at`'s minute to `end_at`'s, in windows of at most
        7 days, each split in two while it answers a full page (`report_limit` rows).

        Whether Kolmeya's `end_at` takes in its own minute is not known, so neighbouring windows
        share their boundary minute and its rows are kept from the later window only: nothing is
        missed and nothing is counted twice, whichever way Kolmeya reads it."""
        start, end = _minute(start_at), _minute(end_at) + MINUTE
        bounds = [start]
        while bounds[-1] + MAX_REPORT_WINDOW < end:
            bounds.append(bounds[-1] + MAX_REPORT_WINDOW)
        bounds.append(end)
        rows: list[ReportedStatus] = []
        for index, (low, high) in enumerate(zip(bounds, bounds[1:])):
            rows += self._report_window(low, high, last=index == len(bounds) - 2)
        return rows

    def _report_window(self, start: datetime, end: datetime, *, last: bool) -> list[ReportedStatus]:
        found = self.client.reports_statuses(start, end, self.report_limit, segment_id=self.settings.segment_id)
        if len(found) >= self.report_limit:
            if end - start > MINUTE:
                middle = start + MINUTE * max(1, (end - start) // MINUTE // 2)
                return self._report_window(start, middle, last=False) + self._report_window(middle, end, last=last)
            log.warning("Kolmeya's status report holds more than %d messages sent in the minute of %s: the rest "
                        "of that minute cannot be read from it", self.report_limit, start.isoformat())
        if not last:
            found = [row for row in found if row.sent_at is None or _minute(row.sent_at) < end]
        return [to_reported_status(row) for row in found]

    def balance(self) -> Decimal:
        return self.client.balance()

    def message_status(self, provider_message_id: str) -> StatusUpdate:
        return to_status_update(self.client.message_status(provider_message_id))

    def recent_replies(self, hours: int) -> Iterator[InboundReply]:
        page = 1
        while True:
            result = self.client.replies(period_hours=min(hours, 168), page=page)
            yield from result.replies
            if not result.has_next:
                return
            page += 1

    def blacklist_add(self, phones: Sequence[str]) -> None:
        self.client.blacklist_add(phones)

    def blacklist_remove(self, phones: Sequence[str]) -> None:
        self.client.blacklist_remove(phones)

    def close(self) -> None:
        self.client.close()


def _builder(settings_model: type[KolmeyaSettings]):
    def build(channel: Channel, _settings: Settings) -> KolmeyaProvider:
        return KolmeyaProvider(channel.credentials["token"], settings_model.model_validate(channel.settings))

    return build


def _statuses(payload) -> Iterator[StatusUpdate]:
    return (to_status_update(status) for status in iter_statuses(payload))


WEBHOOKS = (
    WebhookRoute("POST", "/kolmeya/webhook/reply", "reply", "contact_center.providers.kolmeya.callbacks:reply",
                 "A customer's reply"),
    WebhookRoute("POST", "/kolmeya/webhook/status", "status", "contact_center.providers.kolmeya.callbacks:status",
                 "Delivery reports"),
)

KOLMEYA = ProviderSpec(
    name="kolmeya", kind="sms", label="Kolmeya", settings_model=KolmeyaSettings,
    required_credentials=("token",), optional_credentials=("webhook_jwt_secret",), build=_builder(KolmeyaSettings),
    parse_reply=parse_reply, parse_statuses=_statuses, webhooks=WEBHOOKS,
)

# The same API served by our local simulator (contact-center sandbox kolmeya): nothing leaves the machine.
KOLMEYA_SANDBOX = replace(KOLMEYA, name="kolmeya_sandbox", label="Kolmeya SANDBOX", settings_model=SandboxSettings,
                          build=_builder(SandboxSettings), sandbox=True)
