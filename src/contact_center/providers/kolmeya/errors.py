"""Errors raised by the Kolmeya client.

Every message is written for the operator reading the log: what happened and what to do next.
Messages never contain the API token.
"""

from __future__ import annotations

from contact_center.providers.base import ProviderError
from contact_center.translations import Words


class KolmeyaError(ProviderError):
    """Base class. `retryable` tells a job runner whether trying again later can help."""

    retryable: bool = False

    def __init__(self, message: str | Words, *, status_code: int | None = None, path: str | None = None,
                 outcome_unknown: bool | None = None):
        super().__init__(message)
        self.message = str(self)
        self.status_code = status_code
        self.path = path
        if outcome_unknown is not None:
            self.outcome_unknown = outcome_unknown


class KolmeyaAuthError(KolmeyaError):
    """401: the token was rejected. The channel is paused for everyone until an admin gives it a
    working token, instead of every queued message failing one by one."""

    pauses_channel = True


class KolmeyaPermissionError(KolmeyaError):
    """403: the token may not use this endpoint, or our IP is not allow-listed."""


class KolmeyaNotFound(KolmeyaError):
    """404: wrong path, wrong base URL or unknown id."""


class KolmeyaValidationError(KolmeyaError):
    """422: Kolmeya rejected the request body; `field_errors` holds Laravel's per-field list."""

    def __init__(
        self,
        message: str | Words,
        *,
        field_errors: dict[str, list[str]],
        status_code: int | None = 422,
        path: str | None = None,
    ):
        super().__init__(message, status_code=status_code, path=path)
        self.field_errors = field_errors


class KolmeyaRateLimited(KolmeyaError):
    """429: too many requests in the current window."""

    retryable = True
    slows_channel = True  # the window is the token's, not the message's

    def __init__(
        self,
        message: str | Words,
        *,
        retry_after_seconds: float | None,
        status_code: int | None = 429,
        path: str | None = None,
    ):
        super().__init__(message, status_code=status_code, path=path)
        self.retry_after_seconds = retry_after_seconds


class KolmeyaServerError(KolmeyaError):
    """5xx: a problem on Kolmeya's side, usually temporary. It may have done part of the work
    before failing (or a proxy in front of it answered), so what became of a send is unknown."""

    retryable = True
    outcome_unknown = True


class KolmeyaTimeout(KolmeyaError):
    """No answer in time. Once the request was sent, it may still have been processed."""

    retryable = True
    outcome_unknown = True  # False when the connection never opened (see KolmeyaClient._post)


class KolmeyaConnectionError(KolmeyaError):
    """Kolmeya could not be reached (DNS, refused), or the connection broke (then, once the
    request was sent, it may have been processed)."""

    retryable = True


class KolmeyaResponseError(KolmeyaError):
    """The answer was not JSON, had an unexpected shape, or an unexpected HTTP status: Kolmeya
    (or something in front of it) answered, and what it did with a send cannot be read from it."""

    outcome_unknown = True
