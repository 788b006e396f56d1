"""Errors the business rules raise; the web layer turns each into a clear 4xx."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, operator_words: bool = False):
        super().__init__(message)
        self.message = message
        self.field = field
        # Written in Portuguese for the operator (a UI page's own check), not for an API client in
        # English: an error page in Portuguese may show it as it is.
        self.operator_words = operator_words

    def as_dict(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


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

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after  # whole seconds, for the Retry-After header


def error_response(exc: DomainError):
    """The JSON answer for a DomainError, the same from every route."""
    from fastapi.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse({"error": exc.as_dict()}, status_code=exc.status_code, headers=headers)


class ProviderUnavailable(DomainError):
    """The provider could not do what was asked now (unreachable, refused our credentials): 502."""

    status_code = 502
    code = "provider_unavailable"
