"""UI sessions as records: started at login, checked on every request, ended by logging out, by an
admin, or by a change to the user's password, role or active flag. The only writer of ui_sessions.

The browser holds a random token (inside the signed cookie); the table holds its SHA-256, so the
token itself is never stored. A session lasts 12 hours from login, however active it is.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from contact_center.audit.service import record as audit
from contact_center.auth.models import END_REASONS, UiSession, User
from contact_center.db import utcnow
from contact_center.errors import NotFound

log = logging.getLogger(__name__)
LIFETIME = timedelta(hours=12)  # one working day, as the cookie
TOUCH_EVERY = timedelta(seconds=60)  # a write per request would serialise the UI on SQLite
LIST_LIMIT = 100


def _digest(token: str) -> str:
    # 256 random bits: a fast hash is enough, and lets the token be found by index.
    return hashlib.sha256(token.encode()).hexdigest()


def _check_reason(reason: str) -> None:
    if reason not in END_REASONS:
        raise ValueError(f"unknown reason for ending a session: {reason!r}")


def start(session: Session, user: User, *, client_address: str, user_agent: str) -> tuple[UiSession, str]:
    """A new session for `user`; returns it and the token for the cookie (never kept in clear)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    record = UiSession(token_hash=_digest(token), user=user, created_at=now, last_seen_at=now,
                       expires_at=now + LIFETIME, client_address=client_address[:64],
                       user_agent=user_agent[:300])
    session.add(record)
    session.flush()
    return record, token


def find_active(session: Session, token: str) -> UiSession | None:
    """The live session for this token, or None when it is unknown, ended or expired, or its user
    is deactivated. Notes the visit at most once a minute."""
    record = session.scalar(select(UiSession).options(joinedload(UiSession.user))
                            .where(UiSession.token_hash == _digest(token)))
    now = utcnow()
    if record is None or not record.active or not record.user.active:
        return None
    if now - record.last_seen_at > TOUCH_EVERY:
        record.last_seen_at = now
    return record


def end(session: Session, record: UiSession, reason: str, *, actor_id: int | None, via: str) -> None:
    """End one session (a logout, or an admin naming it); ending an ended one changes nothing."""
    _check_reason(reason)
    if record.ended_at is not None:
        return
    record.ended_at, record.end_reason = utcnow(), reason
    session.flush()
    action = "auth.logout" if reason == "logout" else "auth.sessions_ended"
    audit(session, action=action, subject_type="user", subject_id=record.user_id, actor_id=actor_id, via=via,
          reason=reason, sessions=[record.id])


def end_all(session: Session, user: User, reason: str, *, actor_id: int | None, via: str,
            keep_id: int | None = None) -> int:
    """End every live session of `user` (but `keep_id`, the caller's own); returns how many ended."""
    _check_reason(reason)
    now = utcnow()
    query = select(UiSession.id).where(UiSession.user_id == user.id, UiSession.ended_at.is_(None),
                                       UiSession.expires_at > now)
    if keep_id is not None:
        query = query.where(UiSession.id != keep_id)
    ids = list(session.scalars(query))
    if not ids:
        return 0
    session.execute(update(UiSession).where(UiSession.id.in_(ids)).values(ended_at=now, end_reason=reason))
    audit(session, action="auth.sessions_ended", subject_type="user", subject_id=user.id, actor_id=actor_id,
          via=via, reason=reason, sessions=ids)
    log.info("ended %d session(s) of %s (%s)", len(ids), user.username, reason)
    return len(ids)


def list_for_user(session: Session, user: User, *, include_ended: bool = False) -> list[UiSession]:
    """The user's live sessions (with `include_ended`, the ended and expired ones too), newest first."""
    query = select(UiSession).where(UiSession.user_id == user.id)
    if not include_ended:
        query = query.where(UiSession.ended_at.is_(None), UiSession.expires_at > utcnow())
    return list(session.scalars(query.order_by(UiSession.id.desc()).limit(LIST_LIMIT)))


def get_for_user(session: Session, user: User, session_id: int) -> UiSession:
    record = session.get(UiSession, session_id)
    if record is None or record.user_id != user.id:
        raise NotFound("user '{user_username}' has no session with id {session_id}",
                       user_username=user.username, session_id=session_id)
    return record


def live_counts(session: Session) -> dict[int, int]:
    """How many live sessions each user has (for the admin's list of operators)."""
    rows = session.execute(select(UiSession.user_id, func.count()).where(
        UiSession.ended_at.is_(None), UiSession.expires_at > utcnow()).group_by(UiSession.user_id))
    return dict(rows.all())
