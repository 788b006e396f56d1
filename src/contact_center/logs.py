"""Logging setup, with a filter that blanks out any secret the process knows about."""

from __future__ import annotations

import logging
import threading

_secrets: set[str] = set()
_lock = threading.Lock()
MIN_SECRET_LENGTH = 6  # shorter values would blank out ordinary words


def register_secret(value: str | None) -> None:
    """From now on, `value` never appears in a log line (replaced by ***)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in list(_secrets):
            if secret in redacted:
                redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
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
