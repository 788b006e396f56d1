"""The UI's session: a signed cookie carrying a session token, and a CSRF token for every state change.

The cookie holds {session token, CSRF token}, signed with the secret key (so it cannot be forged)
and timestamped. The token names a record in ui_sessions (auth/sessions.py), checked on every
request: logging out, an admin, or a change to the user's password, role or active flag ends it,
and a copy of the cookie is worthless from then on. Anonymous visitors get a cookie with only a
CSRF token (the login form needs one). Every POST/PUT/PATCH/DELETE made with the cookie must carry
the session's CSRF token: forms as a hidden `csrf_token` field, scripts as the `X-CSRF-Token`
header. A request with a Bearer token instead of the cookie is an API client and needs no CSRF
token (browsers never add that header by themselves).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from starlette.responses import Response

from contact_center.audit.service import Actor, act_as
from contact_center.auth import sessions
from contact_center.auth.models import Role, UiSession, User
from contact_center.deps import DbSession, _bearer_user
from contact_center.errors import DomainError, NotAuthenticated, PermissionDenied

COOKIE = "cc_session"
LANG_COOKIE = "cc_lang"
MAX_AGE_SECONDS = int(sessions.LIFETIME.total_seconds())  # the record decides; the cookie need not outlive it
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class CsrfFailed(DomainError):
    status_code = 403
    code = "csrf_failed"


class LoginRequired(Exception):
    """An HTML page was asked for without a valid session: the UI redirects to the login page."""

    def __init__(self, next_url: str):
        self.next_url = next_url


def _serializer(request: Request) -> URLSafeTimedSerializer:
    state = request.app.state
    serializer = getattr(state, "session_serializer", None)
    if serializer is None:
        key = state.settings.effective_secret_key()
        # A new salt with the session records: cookies from before them are simply not read.
        serializer = state.session_serializer = URLSafeTimedSerializer(key, salt="contact-center.ui-session.2")
    return serializer


def read(request: Request) -> dict[str, Any]:
    """The session's data; empty when there is no cookie or it is forged, malformed or expired."""
    if "session" in request.scope.get("state", {}):
        return request.state.session
    raw = request.cookies.get(COOKIE)
    data: dict[str, Any] = {}
    if raw:
        try:
            loaded = _serializer(request).loads(raw, max_age=MAX_AGE_SECONDS)
            data = loaded if isinstance(loaded, dict) else {}
        except BadSignature:
            data = {}
    request.state.session = data
    return data


def write(request: Request, response: Response, data: dict[str, Any]) -> None:
    request.state.session = data
    secure = request.app.state.settings.public_base_url.startswith("https://")
    response.set_cookie(COOKIE, _serializer(request).dumps(data), max_age=MAX_AGE_SECONDS, httponly=True,
                        samesite="lax", secure=secure, path="/")


def csrf_token(request: Request) -> str:
    """The session's CSRF token; an anonymous session gets one too (the login form needs it).
    Call `persist_if_new` on the response afterwards."""
    data = read(request)
    if not data.get("c"):
        data = {**data, "c": secrets.token_urlsafe(24)}
        request.state.session = data
        request.state.session_changed = True
    return data["c"]


def persist_if_new(request: Request, response: Response) -> Response:
    if getattr(request.state, "session_changed", False):
        write(request, response, request.state.session)
    return response


def check_csrf(request: Request, supplied: str | None) -> None:
    expected = read(request).get("c")
    if not expected or not supplied or not hmac.compare_digest(expected, supplied):
        raise CsrfFailed("the form or request is missing its security token, or it expired; reload the page "
                         "and try again")


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def log_in(request: Request, response: Response, token: str) -> None:
    """Hand the browser a new session's token (from auth.sessions.start)."""
    # A fresh CSRF token at login: one obtained before (by anyone) is worthless afterwards.
    write(request, response, {"s": token, "c": secrets.token_urlsafe(24)})


def log_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def current_session(request: Request, session: Session) -> UiSession | None:
    """The live session the cookie names, or None (no cookie, a forged one, or an ended session)."""
    token = read(request).get("s")
    if not isinstance(token, str) or not token:
        return None
    return sessions.find_active(session, token)


def user_from_cookie(request: Request, session: Session) -> User | None:
    """The cookie's user, who is then the actor of what the request records in the audit log."""
    record = current_session(request, session)
    if record is None:
        return None
    act_as(session, Actor("ui", user_id=record.user_id, client_address=client_address(request) or None))
    return record.user


# --- dependencies ------------------------------------------------------------------------------------

def _page_user(request: Request, session: DbSession) -> User:
    user = user_from_cookie(request, session)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return user


def _operator(request: Request, session: DbSession) -> User:
    """An API token (API clients) or the session cookie plus its CSRF token on changes (the UI)."""
    if request.headers.get("authorization"):
        return _bearer_user(request, session)
    user = user_from_cookie(request, session)
    if user is None:
        raise NotAuthenticated("log in, or send an API token as 'Authorization: Bearer <token>'")
    if request.method not in SAFE_METHODS:
        check_csrf(request, request.headers.get(CSRF_HEADER))
    return user


def _admin_page_user(user: Annotated[User, Depends(_page_user)]) -> User:
    if not user.role_enum.includes(Role.admin):
        raise PermissionDenied("this page is for admins; you are {user_role}", user_role=user.role)
    return user


PageUser = Annotated[User, Depends(_page_user)]
AdminPageUser = Annotated[User, Depends(_admin_page_user)]
Operator = Annotated[User, Depends(_operator)]


def require_operator_role(role: Role):
    def check(user: Operator) -> User:
        if not user.role_enum.includes(role):
            raise PermissionDenied("this needs the {role_value} role; you are {user_role}",
                                   role_value=role.value, user_role=user.role)
        return user

    return check


SupervisorOperator = Annotated[User, Depends(require_operator_role(Role.supervisor))]
