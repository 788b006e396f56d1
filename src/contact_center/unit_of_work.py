"""Work that must happen only once the transaction that asked for it has committed.

Jobs and live events go out after commit: a worker must never pick up a message id whose row
is not visible yet, and a rolled-back change must not be announced.

SQLAlchemy reports a savepoint's release as a commit too; that is not the commit these wait
for, and a savepoint rolled back drops only what was asked for inside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)
_KEY = "after_commit"
_MARKS = "after_commit_marks"  # savepoint → how many callbacks there were when it began


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    session.info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_KEY, ()))


@event.listens_for(Session, "after_transaction_end")
def _forget_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.get(_MARKS, {}).pop(transaction, None)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: what it asked for waits for the real commit
    for callback in session.info.pop(_KEY, []):
        try:
            callback()
        except Exception:  # the data is committed; a failed notification is recovered by the sweeper
            log.exception("post-commit callback failed")


@event.listens_for(Session, "after_soft_rollback")
def _drop_callbacks(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        mark = session.info.get(_MARKS, {}).get(previous_transaction)
        if mark is not None and _KEY in session.info:
            del session.info[_KEY][mark:]
    elif previous_transaction.parent is None:
        session.info.pop(_KEY, None)
