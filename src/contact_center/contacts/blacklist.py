"""SMS opt-outs pushed to the providers' own blacklists (Kolmeya's /blacklist/store), so that a
send from anywhere else on the account (Kolmeya's panel, another system) does not reach the
customer either. We never send to an opted-out contact ourselves; this is the second lock.

Whenever a contact's SMS opt-out changes (a keyword reply, an operator in the inbox or the API,
`contacts update --opt-out-sms`), a job runs once that change is committed. It goes to every
active SMS channel whose provider keeps a blacklist, not only the one the opt-out came from: the
opt-out is the contact's, for every SMS channel, and each channel may be a different account.
The job reads the contacts as they are when it runs, so a retry, or a job for an opt-out the
operator reversed meanwhile, does what the contact's flag says now: add their numbers when
opted out, remove them when not.

A number is added only once the opt-out's confirmation has left (a blacklisted number would
refuse it); a provider that fails is tried again later, alone, with growing delays, and logged
for on-call with the channel and how many numbers (never the numbers or the token).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from contact_center.contacts.models import Contact
from contact_center.db import chunks, transaction

log = logging.getLogger(__name__)

# Seconds before the 2nd, 3rd… attempt; after the last, the numbers are left to an operator.
RETRY_DELAYS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
CHUNK = 1000  # numbers per call: Kolmeya's limit
UNSENT = ("queued", "sending", "unknown")  # a confirmation that may still go out


@dataclass
class SyncRun:
    """What one run did, and what is left for the next attempt (the channels that failed)."""

    added: int = 0
    removed: int = 0
    retry_after: float | None = None  # seconds; None: nothing left to do
    retry_channel_ids: list[int] | None = None  # None: every channel
    waiting_for_confirmation: bool = False


def push_after_commit(session: Session, contact_ids: Iterable[int]) -> None:
    """Have these contacts' SMS opt-outs (or their reversal) pushed to the providers once the
    transaction commits. Flushes nothing; works in any process with a runtime (serve, worker,
    the webhook writer, CLI commands that build one)."""
    ids = sorted(set(contact_ids))
    if ids:
        _after_commit(session, lambda jobs: jobs.sync_blacklist(ids),
                      f"the SMS opt-out of contact(s) {', '.join(map(str, ids))}")


def push_erased_after_commit(session: Session, numbers: Iterable[str | None]) -> None:
    """Have an erased contact's numbers added to the blacklists once the erasure commits: the push
    of its opt-out may not have happened yet (waiting for its confirmation, or for a provider to come
    back), and its contact row holds no number any more. The numbers travel in the job's arguments
    until it has run (a harmless second add when the first push had happened)."""
    numbers = sorted({number for number in numbers if number})
    if numbers:
        _after_commit(session, lambda jobs: jobs.push_erased_to_blacklist(numbers),
                      f"{len(numbers)} number(s) of an erased contact")  # never the numbers themselves


def _after_commit(session: Session, enqueue, what: str) -> None:
    from contact_center.runtime import current_or_none
    from contact_center.unit_of_work import after_commit

    runtime = current_or_none()
    if runtime is None:
        log.warning("%s: not pushed to the providers' blacklists: this process has no job queue", what)
        return
    after_commit(session, lambda: enqueue(runtime.jobs))


def sync(session_factory: sessionmaker[Session], settings, contact_ids: list[int],
         channel_ids: list[int] | None = None, attempt: int = 1, numbers: list[str] | None = None) -> SyncRun:
    """Tell each channel's provider (all of them, or `channel_ids` on a retry) about these contacts'
    numbers, or add `numbers` as given (an erased contact's). Nothing is held open in the database
    while a provider is called."""
    from contact_center.channels.models import Channel
    from contact_center.channels.service import build_provider
    from contact_center.providers.base import supports

    run = SyncRun()
    with transaction(session_factory) as session:
        add, remove, contacts_adding = (numbers, [], []) if numbers is not None else _numbers(session, contact_ids)
        if not add and not remove:
            return run  # contacts without a phone, or deleted since
        if add and contacts_adding and attempt < MAX_ATTEMPTS and _confirmation_unsent(session, contacts_adding):
            run.waiting_for_confirmation = True
            run.retry_channel_ids, run.retry_after = channel_ids, RETRY_DELAYS[attempt - 1]
            return run
        query = select(Channel).where(Channel.kind == "sms", Channel.active.is_(True)).order_by(Channel.id)
        if channel_ids is not None:
            query = query.where(Channel.id.in_(channel_ids))
        targets = []
        for channel in session.scalars(query):
            try:
                provider = build_provider(channel, settings)
            except Exception as exc:  # a channel saved with broken settings: the others go on
                _failed(run, channel.id, channel.name, exc, len(add), len(remove), attempt)
                continue
            if supports(provider, "blacklist_add") and supports(provider, "blacklist_remove"):
                targets.append((channel.id, channel.name, provider))
            else:
                provider.close()
    for channel_id, name, provider in targets:
        try:
            _push(provider, add, remove)
        except Exception as exc:  # a provider's failure is its channel's alone; the others go on
            _failed(run, channel_id, name, exc, len(add), len(remove), attempt)
        else:
            run.added += len(add)
            run.removed += len(remove)
            log.info("blacklist of channel %r: %d number(s) added, %d removed", name, len(add), len(remove))
        finally:
            provider.close()
    return run


def _numbers(session: Session, contact_ids: list[int]) -> tuple[list[str], list[str], list[int]]:
    """The numbers to add (of contacts opted out of SMS) and to remove (of the others), and which
    contacts are being added."""
    add, remove, adding = set(), set(), []
    for chunk in chunks(contact_ids):
        for contact_id, opted_out, *numbers in session.execute(
                select(Contact.id, Contact.opt_out_sms, Contact.phone_e164, Contact.mobile_e164)
                .where(Contact.id.in_(chunk))):
            (add if opted_out else remove).update(number for number in numbers if number)
            if opted_out:
                adding.append(contact_id)
    return sorted(add), sorted(remove - add), adding


def _confirmation_unsent(session: Session, contact_ids: list[int]) -> bool:
    """Whether an SMS confirming one of these opt-outs may still go out: the blacklist would refuse it."""
    from contact_center.channels.models import Channel
    from contact_center.messaging.models import Message
    from contact_center.messaging.opt_out import ORIGIN

    return session.scalar(
        select(Message.id).join(Channel, Channel.id == Message.channel_id)
        .where(Message.contact_id.in_(contact_ids), Message.origin == ORIGIN, Channel.kind == "sms",
               or_(*(Message.status == status for status in UNSENT)))
        .limit(1)) is not None


def _push(provider, add: list[str], remove: list[str]) -> None:
    for start in range(0, len(add), CHUNK):
        provider.blacklist_add(add[start:start + CHUNK])
    for start in range(0, len(remove), CHUNK):
        provider.blacklist_remove(remove[start:start + CHUNK])


def _failed(run: SyncRun, channel_id: int, name: str, exc: Exception, adding: int, removing: int,
            attempt: int) -> None:
    reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"  # provider errors carry no token
    what = f"blacklist of channel {name!r}: {adding} number(s) to add, {removing} to remove"
    if attempt >= MAX_ATTEMPTS:
        log.error("%s: still failing after %d attempts, giving up (%s). Add or remove them in the provider's "
                  "panel.", what, attempt, reason)
        return
    delay = max(RETRY_DELAYS[attempt - 1], getattr(exc, "retry_after_seconds", None) or 0)
    log.warning("%s: attempt %d of %d failed (%s); trying again in %d s", what, attempt, MAX_ATTEMPTS, reason,
                delay)
    run.retry_channel_ids = [*(run.retry_channel_ids or []), channel_id]
    run.retry_after = max(run.retry_after or 0, delay)
