"""The per-process counters, histograms and gauges, on prometheus-client's default registry (which
also carries the process's own CPU, memory and file descriptors). Each process counts what it does
itself; Prometheus sums the processes."""

from __future__ import annotations

import inspect
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from contact_center.providers.base import ProviderError

disable_created_metrics()  # the `_created` twin of every series doubles a scrape for nothing we use

# Seconds; a campaign's messages wait their turn in the queue, so the dispatch buckets run long.
DISPATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

WEBHOOK_RECEIVED = Counter(
    "contact_center_webhook_callbacks_received", "Provider callbacks received, whatever their answer.",
    ["provider", "endpoint"])
WEBHOOK_REJECTED = Counter(
    "contact_center_webhook_callbacks_rejected", "Provider callbacks answered with an error, by its code "
    "(not_authenticated, invalid_payload, payload_too_large, forbidden, internal_error…).",
    ["provider", "endpoint", "reason"])
DISPATCH_LATENCY = Histogram(
    "contact_center_dispatch_latency_seconds", "From a message queued to the provider accepting it "
    "(retries and rate-limit waits included).", ["kind", "provider"], buckets=DISPATCH_BUCKETS)
PROVIDER_ERRORS = Counter(
    "contact_center_provider_errors", "Provider calls refused or failed (sends, status checks, reports, media, "
    "blacklists…), by operation and error code (Meta's code, else http_<status>, else the kind of failure).",
    ["provider", "operation", "code"])
LIVE_SUBSCRIBERS = Gauge(
    "contact_center_live_subscribers", "Open live event streams (operator screens, API clients) in this process.")
REQUEST_LATENCY = Histogram(
    "contact_center_http_request_duration_seconds", "Time until an HTTP request's response starts (for a stream, "
    "its first byte), by route template.", ["method", "route", "status"], buckets=REQUEST_BUCKETS)


def provider_error_code(exc: ProviderError) -> str:
    """A small, stable label for an error: the provider's code, the HTTP status, or the error's kind."""
    code = getattr(exc, "code", None)
    if code is not None:
        return str(code)
    status = getattr(exc, "http_status", None) or getattr(exc, "status_code", None)
    if status is not None:
        return f"http_{status}"
    return type(exc).__name__


class CountedProvider:
    """A provider whose every call counts its ProviderErrors in PROVIDER_ERRORS, whoever made the call
    (dispatch, the pollers, a status check, a media fetch…); everything else passes through."""

    def __init__(self, provider: Any, provider_name: str) -> None:
        self._provider = provider
        self._provider_name = provider_name

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._provider, name)
        if name.startswith("_") or not callable(value):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                result = value(*args, **kwargs)
            except ProviderError as exc:
                self._count(name, exc)
                raise
            return self._counted_iteration(name, result) if inspect.isgenerator(result) else result
        return counted

    def _counted_iteration(self, operation: str, items):
        try:
            yield from items  # a paged listing fails between pages
        except ProviderError as exc:
            self._count(operation, exc)
            raise

    def _count(self, operation: str, exc: ProviderError) -> None:
        PROVIDER_ERRORS.labels(self._provider_name, operation, provider_error_code(exc)).inc()
