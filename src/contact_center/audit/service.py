"""The audit log's one writer, and who is acting.

The request or command that changes something says once who is acting (`act_as`: the UI's user,
an API token, the command line) and every entry recorded in its session names that actor,
its address and how it came (`via`). Entries are added to the session's unit of work, so they
commit with the change they describe, or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, or_, select, update
from sqlalchemy.orm import Session

from contact_center.audit.models import AuditEntry
from contact_center.db import chunks, utcnow
from contact_center.translations import Words

_ACTOR = "audit.actor"
# Every action the product records, in the order the audit page offers them (labels in the catalogs, translations/).
ACTIONS = (
    "auth.login", "auth.login_failed", "auth.logout", "auth.sessions_ended",
    "user.create", "user.update", "token.create", "token.revoke",
    "channel.create", "channel.update", "channel.pause", "channel.rotate_webhook_secret",
    "template.create", "template.update", "template.delete",
    "sms.send", "whatsapp.send",
    "campaign.create", "campaign.start", "campaign.pause", "campaign.resume", "campaign.cancel",
    "campaign.complete", "campaign.export",
    "contact.create", "contact.update", "contact.delete", "contact.export", "contact.merge",
    "contact.opt_out_sms", "contact.opt_out_sms.cleared", "contact.opt_out_whatsapp",
    "contact.opt_out_whatsapp.cleared", "contact.opt_out_marketing", "contact.opt_out_marketing.cleared",
    "contact.data_export", "contact.erase", "messages.retention", "audit.export",
)
SUMMARY_LENGTH = 300


@dataclass(frozen=True)
class Actor:
    """Who acts; an entry's actor_kind follows from what is named (a campaign, a token, a user, or none)."""

    via: str
    user_id: int | None = None
    token_id: int | None = None
    client_address: str | None = None


def act_as(session: Session, actor: Actor) -> None:
    """Who acts in this session from now on (a request's or a command's)."""
    session.info[_ACTOR] = actor


def record(
    session: Session, *, action: str, subject_type: str, subject_id: int | None,
    actor_id: int | None = None, via: str | None = None, campaign_id: int | None = None,
    client_address: str | None = None, **detail: Any,
) -> AuditEntry:
    """Add an audit entry to the current unit of work (it commits with the change it describes).
    What is not given comes from the session's actor (`act_as`)."""
    actor: Actor | None = session.info.get(_ACTOR)
    if actor is not None:
        actor_id = actor.user_id if actor_id is None else actor_id
        via = via or actor.via
        client_address = client_address or actor.client_address
    # The token is named only when its owner is the one the entry names.
    token_id = actor.token_id if actor is not None and actor.user_id == actor_id else None
    if campaign_id is not None:
        kind = "campaign"
    elif token_id is not None:
        kind = "token"
    elif actor_id is not None:
        kind = "user"
    else:
        kind = "system"
    # Words (a provider's refusal given as the reason) are kept as the code writes them: an entry is a record.
    detail = {name: str(value) if isinstance(value, Words) else value for name, value in detail.items()}
    entry = AuditEntry(action=action, subject_type=subject_type, subject_id=subject_id, actor_kind=kind,
                       actor_id=actor_id, token_id=token_id, campaign_id=campaign_id, via=via or "api",
                       client_address=client_address, detail=detail,
                       summary=describe(detail)[:SUMMARY_LENGTH])
    session.add(entry)
    return entry


def describe(detail: dict[str, Any]) -> str:
    """A one-line reading of an entry's detail, for the list (the detail itself is kept whole)."""
    return ", ".join(f"{key}: {value}" for key, value in detail.items() if value not in (None, "", [], {}))


REDACTED = "[apagado]"


def redact(session: Session, needles: Iterable[str], *, entry_ids: Iterable[int] = (), search: bool = True) -> int:
    """Replace each needle (a customer's name, phones, email, CPF…) by "[apagado]" wherever an entry's
    summary or detail holds it, stamping `redacted_at`: the one change the database lets through
    (migration 0013). Looks in `entry_ids` and, with `search`, in every entry whose text holds a
    needle; returns how many entries changed."""
    needles = sorted({n for n in needles if n}, key=len, reverse=True)  # longest first
    if not needles:
        return 0
    detail_text = cast(AuditEntry.detail, String)
    candidates = set(entry_ids)
    for chunk in chunks(needles, 20) if search else ():
        matches = [column.like(f"%{form}%") for needle in chunk for form in written_forms(needle)
                   for column in (AuditEntry.summary, detail_text)]
        candidates.update(session.scalars(select(AuditEntry.id).where(or_(*matches))))
    changed, now = 0, utcnow()
    for chunk in chunks(sorted(candidates)):
        for entry_id, summary, detail in session.execute(
                select(AuditEntry.id, AuditEntry.summary, AuditEntry.detail).where(AuditEntry.id.in_(chunk))):
            new_summary, new_detail = scrub(summary, needles), scrub(detail, needles)
            if new_summary != summary or new_detail != detail:
                session.execute(update(AuditEntry).where(AuditEntry.id == entry_id)
                                .values(summary=new_summary, detail=new_detail, redacted_at=now)
                                .execution_options(synchronize_session=False))
                changed += 1
    return changed


def written_forms(text: str) -> set[str]:
    """The text as written and as a JSON column stores it (non-ASCII escaped), for LIKE searches."""
    return {text, json.dumps(text)[1:-1]}


def scrub(value: Any, needles: Iterable[str]) -> Any:
    """`value` (text, or JSON-like data) with each needle, longest first, replaced by "[apagado]"."""
    ordered = needles if isinstance(needles, list) else sorted(set(needles), key=len, reverse=True)
    if isinstance(value, str):
        for needle in ordered:
            value = value.replace(needle, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: scrub(item, ordered) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item, ordered) for item in value]
    return value


def latest(session: Session, *, subject_type: str, subject_id: int, actions: list[str]) -> dict[str, AuditEntry]:
    """The newest entry of each of these actions about one subject (action -> entry)."""
    newest = (select(AuditEntry.action, func.max(AuditEntry.id).label("id"))
              .where(AuditEntry.subject_type == subject_type, AuditEntry.subject_id == subject_id,
                     AuditEntry.action.in_(actions))
              .group_by(AuditEntry.action).subquery())
    found = session.scalars(select(AuditEntry).join(newest, newest.c.id == AuditEntry.id))
    return {entry.action: entry for entry in found}
