"""Login throttling: more than LIMIT wrong passwords within WINDOW for one user name, or from one
client address, and further attempts are refused (without checking the password, which costs CPU)
until the oldest failure in the window ages out. It lives in the database, so every process of the
service sees the same counts. The only writer of login_failures."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from contact_center.auth.models import LoginFailure
from contact_center.db import utcnow

LIMIT = 10
WINDOW = timedelta(seconds=60)
PURGE_BATCH = 500  # rows dropped per failure at most: a bounded cost for the request that does it


def normalise(username: str) -> str:
    """The name as the throttle counts it: as login compares it, cut to the column's size."""
    return username.strip().lower()[:64]


def retry_after(session: Session, *, username: str, client_address: str) -> int | None:
    """Whole seconds until this name and address may try again, or None when they may now."""
    now = utcnow()
    waits = []
    for column, value in ((LoginFailure.username, username), (LoginFailure.client_address, client_address[:64])):
        # With LIMIT failures in the window, a slot frees when the LIMIT-th newest one leaves it.
        oldest_counted = session.scalar(
            select(LoginFailure.at).where(column == value, LoginFailure.at > now - WINDOW)
            .order_by(LoginFailure.at.desc()).offset(LIMIT - 1).limit(1))
        if oldest_counted is not None:
            waits.append((oldest_counted + WINDOW - now).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None


def record_failure(session: Session, *, username: str, client_address: str) -> None:
    """Count a failed attempt, and drop failures too old to count (so the table stays small)."""
    now = utcnow()
    stale = (select(LoginFailure.id).where(LoginFailure.at <= now - WINDOW).limit(PURGE_BATCH)
             # PostgreSQL: two logins purging at once skip each other's rows instead of deadlocking.
             .with_for_update(skip_locked=True).scalar_subquery())
    session.execute(delete(LoginFailure).where(LoginFailure.id.in_(stale)))
    session.add(LoginFailure(at=now, username=username, client_address=client_address[:64]))
    session.flush()
