"""Errors the business rules raise; the web layer turns each into a clear 4xx."""

from __future__ import annotations

from contact_center.translations import Words


class DomainError(Words, Exception):
    """A refusal, kept as its sentence (with {placeholders}) plus the values that fill it, so the
    edge can say it in the reader's language: `message` is the sentence filled in as written in the
    code, `text(lang)` the same in `lang` from the catalogs in translations/. Another refusal (an
    InvalidValue) may be given as the message: its words are kept."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str | Words, *, field: str | None = None, **params):
        Words.__init__(self, message, **params)
        self.message = self.text(None)
        self.field = field
        Exception.__init__(self, self.message)

    def as_dict(self, lang: str | None = None) -> dict:
        body: dict = {"code": self.code, "message": self.text(lang)}
        if self.field:
            body["field"] = self.field
        return body


class InvalidValue(Words, ValueError):
    """A schema validator's refusal (pydantic reports it as a 422 problem), kept like a DomainError's
    message: the sentence and its parameters, so the edge can translate it."""

    def __init__(self, message: str | Words, **params):
        Words.__init__(self, message, **params)
        ValueError.__init__(self, self.text(None))

    def __reduce__(self):  # pickled (a job's failure) with its words, whatever its constructor takes
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls, args, state):
    refusal = cls.__new__(cls)
    ValueError.__init__(refusal, *args)
    refusal.__dict__.update(state)
    return refusal


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid_input"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(DomainError):
    status_code = 403
    code = "forbidden"


class TooManyAttempts(DomainError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int, **params):
        super().__init__(message, **params)
        self.retry_after = retry_after  # whole seconds, for the Retry-After header


def error_response(exc: DomainError, lang: str | None = None):
    """The JSON answer for a DomainError, the same from every route; its message in `lang` (None: as
    the code wrote it)."""
    from fastapi.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse({"error": exc.as_dict(lang)}, status_code=exc.status_code, headers=headers)


class ProviderUnavailable(DomainError):
    """The provider could not do what was asked now (unreachable, refused our credentials): 502."""

    status_code = 502
    code = "provider_unavailable"
