"""Messages as notes in the Odoo partner's chatter, the history the old Odoo addons kept there.

With CONTACT_CENTER_ODOO_CHATTER_NOTES on, each message sent to (once the provider took it) or
received from a contact that has an Odoo partner is posted on that partner by the
``post_odoo_notes`` job, after the commit that stored it: the send or the webhook never waits for
Odoo, nor fails with it. A note that cannot be posted (Odoo down, the login refused) is tried again
later with growing waits; after the last try the job logs an error naming the messages.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contact_center.channels.kinds import kind_of
from contact_center.channels.models import Channel
from contact_center.contacts.models import Contact
from contact_center.db import transaction
from contact_center.messaging.models import Message
from contact_center.odoo import config as odoo_config
from contact_center.odoo.client import OdooClient, OdooError, OdooFault

log = logging.getLogger(__name__)

RETRY_DELAYS = (30, 120, 600, 1800, 3600, 3 * 3600)  # seconds before tries 2, 3, …
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def post_after_commit(session: Session, message_ids: list[int]) -> None:
    """Have these messages posted to their partners' chatter once the transaction commits, when notes
    are on. Costs nothing when they are off; flushes nothing."""
    from contact_center.runtime import current_or_none
    from contact_center.unit_of_work import after_commit

    runtime = current_or_none()
    if runtime is None or not message_ids or not runtime.settings.odoo_chatter_notes:
        return
    if not odoo_config.configured(runtime.settings):
        return
    ids = list(message_ids)
    after_commit(session, lambda: runtime.jobs.post_odoo_notes(ids))


@dataclass
class NotesRun:
    posted: list[int] = field(default_factory=list)  # message ids
    retry: list[int] = field(default_factory=list)
    retry_after: float | None = None  # seconds; None: nothing left to do


def post_notes(session_factory: sessionmaker[Session], config: odoo_config.OdooConfig, message_ids: list[int],
               attempt: int = 1, client: OdooClient | None = None) -> NotesRun:
    """Post the notes of these messages (those whose contact has a partner and was not erased);
    nothing is held open in the database while Odoo is called."""
    with transaction(session_factory) as session:
        rows = session.execute(
            select(Message.id, Message.direction, Message.body, Message.phone_e164, Message.sent_at,
                   Message.received_at, Message.created_at, Channel.kind, Contact.odoo_partner_id)
            .join(Contact, Contact.id == Message.contact_id).join(Channel, Channel.id == Message.channel_id)
            # An erased contact keeps its partner id only so the sync skips it: nothing goes to Odoo.
            .where(Message.id.in_(message_ids), Contact.odoo_partner_id.is_not(None), Contact.erased_at.is_(None))
            .order_by(Message.id)
        ).all()
    run = NotesRun()
    if not rows:
        return run
    client = client or config.client()
    for index, row in enumerate(rows):
        try:
            client.post_note(row.odoo_partner_id, note_body(row))
        except OdooFault as exc:
            if "does not exist or has been deleted" in exc.message:  # deleted in Odoo: nowhere to post
                log.warning("odoo chatter: message %d not posted, partner %d no longer exists", row.id,
                            row.odoo_partner_id)
                continue
            run.retry.append(row.id)
            log.warning("odoo chatter: message %d, partner %d: %s", row.id, row.odoo_partner_id, exc.message)
        except OdooError as exc:  # Odoo is down or refuses the login: the rest would fail the same way
            run.retry.extend(r.id for r in rows[index:])
            log.warning("odoo chatter: %d note(s) not posted (try %d of %d): %s", len(rows) - index, attempt,
                        MAX_ATTEMPTS, exc.message)
            break
        else:
            run.posted.append(row.id)
    if run.retry:
        if attempt >= MAX_ATTEMPTS:
            log.error("odoo chatter: gave up on the notes of message(s) %s after %d tries",
                      ", ".join(map(str, run.retry)), attempt)
            run.retry = []
        else:
            run.retry_after = RETRY_DELAYS[attempt - 1]
    if run.posted:
        log.info("odoo chatter: %d note(s) posted", len(run.posted))
    return run


def note_body(row) -> str:
    """The note's HTML: what kind of message, which way, when and from/to which number, then its text."""
    kind = kind_of(row.kind).label
    when = row.received_at if row.direction == "in" else (row.sent_at or row.created_at)
    heading = (f"{kind} recebido de {row.phone_e164}" if row.direction == "in"
               else f"{kind} enviado para {row.phone_e164}")
    stamp = when.strftime("%d/%m/%Y %H:%M UTC") if when else ""
    text = html.escape(row.body or "").replace("\n", "<br/>")
    return f"<p><b>{html.escape(heading)}</b> {stamp}</p><p>{text}</p>"

