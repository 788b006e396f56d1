"""Logging in to the UI with a password: the throttle first, then the password, then a session.
Every outcome but a refusal by the throttle is written to the audit log."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.audit.service import record as audit
from contact_center.auth import service, sessions, throttle
from contact_center.auth.models import UiSession, User
from contact_center.errors import NotAuthenticated, TooManyAttempts

log = logging.getLogger(__name__)


def password_login(session: Session, *, username: str, password: str, client_address: str,
                   user_agent: str) -> tuple[UiSession, str]:
    """A new session and its token for these credentials.

    Raises TooManyAttempts while the name or the address is throttled, NotAuthenticated for wrong
    credentials. A failure is recorded in `session` (a throttle row and an audit entry) before
    raising: the caller must still commit it, so it answers the error instead of letting it
    roll the transaction back."""
    name = throttle.normalise(username)
    wait = throttle.retry_after(session, username=name, client_address=client_address)
    if wait is not None:
        # No write here: a client hammering the form must not fill the database either.
        log.info("login throttled for %r from %s (%d s left)", name, client_address, wait)
        raise TooManyAttempts("too many failed logins; try again in {wait} s", wait=wait, retry_after=wait)
    try:
        user = service.authenticate(session, username, password)
    except NotAuthenticated:
        throttle.record_failure(session, username=name, client_address=client_address)
        known = session.scalar(select(User.id).where(User.username == name))
        audit(session, action="auth.login_failed", subject_type="user", subject_id=known, via="ui",
              client_address=client_address, username=name)
        raise
    record, token = sessions.start(session, user, client_address=client_address, user_agent=user_agent)
    audit(session, action="auth.login", subject_type="user", subject_id=user.id, actor_id=user.id, via="ui",
          client_address=client_address, session_id=record.id)
    return record, token
