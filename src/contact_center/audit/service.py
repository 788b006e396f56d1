"""The audit log's one writer, and who is acting.

The request or command that changes something says once who is acting (`act_as`: the UI's user,
an API token, a campaign, the system) and every entry recorded in its session names that actor,
its address and how it came (`via`). Entries are added to the session's unit of work, so they
commit with the change they describe, or not at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from contact_center.audit.models import AuditEntry

_ACTOR = "audit.actor"
SUMMARY_LENGTH = 300


@dataclass(frozen=True)
class Actor:
    kind: str  # user, token, campaign, system
    via: str
    user_id: int | None = None
    token_id: int | None = None
    campaign_id: int | None = None
    client_address: str | None = None


def act_as(session: Session, actor: Actor) -> None:
    """Who acts in this session from now on (a request's or a command's)."""
    session.info[_ACTOR] = actor


def record(
    session: Session, *, action: str, subject_type: str, subject_id: int | None,
    actor_id: int | None = None, via: str | None = None, campaign_id: int | None = None,
    client_address: str | None = None, summary: str | None = None, **detail: Any,
) -> AuditEntry:
    """Add an audit entry to the current unit of work (it commits with the change it describes).
    What is not given comes from the session's actor (`act_as`)."""
    actor: Actor | None = session.info.get(_ACTOR)
    if actor is not None:
        actor_id = actor.user_id if actor_id is None else actor_id
        via = via or actor.via
        campaign_id = campaign_id if campaign_id is not None else actor.campaign_id
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
    entry = AuditEntry(action=action, subject_type=subject_type, subject_id=subject_id, actor_kind=kind,
                       actor_id=actor_id, token_id=token_id, campaign_id=campaign_id, via=via or "api",
                       client_address=client_address, detail=detail,
                       summary=(summary if summary is not None else describe(detail))[:SUMMARY_LENGTH])
    session.add(entry)
    return entry


def describe(detail: dict[str, Any]) -> str:
    """A one-line reading of an entry's detail, for the list (the detail itself is kept whole)."""
    return ", ".join(f"{key}: {value}" for key, value in detail.items() if value not in (None, "", [], {}))
