"""Logging setup, with a filter that blanks out any secret the process knows about.

Two formats (CONTACT_CENTER_LOG_FORMAT): `text`, one readable line per record, and `json`, one
JSON object per line for log collectors: time (ISO-8601, UTC), level, logger, message, the request
id of the HTTP request being served, any `extra=` fields of the call (channel, message_id…) and
the exception, if any. Secrets are blanked in every field.
"""

from __future__ import annotations

import json
import logging
import threading
from contextvars import ContextVar
from datetime import UTC, datetime

_secrets: set[str] = set()
_lock = threading.Lock()
MIN_SECRET_LENGTH = 6  # shorter values would blank out ordinary words


def register_secret(value: str | None) -> None:
    """From now on, `value` never appears in a log line (replaced by ***)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every secret the process knows replaced by ***."""
    # Longest first: a secret inside another (a short token within a longer key) must not leave the
    # rest of the longer one showing.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


# The id of the HTTP request being served (metrics/middleware.py sets it); log lines carry it.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# What every LogRecord has; anything else on a record came from `extra=` and goes in the JSON line.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                                     "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                 .replace("+00:00", "Z"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        current_request = request_id.get()
        if current_request:
            entry["request_id"] = current_request
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The readable line; a traceback is redacted as the message is."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatException(self, exc_info) -> str:
        return redact(super().formatException(exc_info))


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Routine chatter (each migration check, each HTTP call, each periodic job) hides what matters.
    for name in ("alembic", "httpx", "huey"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # Access logs go through the same redaction: webhook URLs carry their secret in the query string.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
