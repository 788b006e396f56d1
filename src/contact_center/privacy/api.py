"""LGPD requests over REST, for admins: a customer's data exported, or erased."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from contact_center.auth.models import Role, User
from contact_center.deps import DbSession
from contact_center.privacy.erasure import erase_contact
from contact_center.privacy.export import export_contact
from contact_center.privacy.schemas import ErasureIn, ErasureOut
from contact_center.routes import CheckedRoute
from contact_center.web.session import require_operator_role

router = APIRouter(prefix="/api/contacts", tags=["LGPD"], route_class=CheckedRoute)
AdminOperator = Annotated[User, Depends(require_operator_role(Role.admin))]


@router.get("/{contact_id}/export", response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "A ZIP of JSON files and media."}})
def export_data(contact_id: int, request: Request, session: DbSession, _: AdminOperator):
    """Everything we hold about the contact (LGPD access request): contact data, identifiers,
    conversations and their events, messages on every channel and their tries, raw callbacks,
    campaigns they were in, audit entries naming them, and their media files."""
    content, _counts = export_contact(session, contact_id, request.app.state.settings)
    return Response(content, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="contato-{contact_id}-dados.zip"'})


@router.post("/{contact_id}/erase", response_model=ErasureOut)
def erase_data(contact_id: int, body: ErasureIn, request: Request, session: DbSession, _: AdminOperator):
    """Erase the contact's personal data (LGPD): name, phones, email, CPF, notes, identifiers, message
    texts and media, raw callbacks. Message rows stay blanked, so reports keep their counts."""
    erased = erase_contact(session, contact_id, reason=body.reason, requested_by=body.requested_by,
                           settings=request.app.state.settings)
    return ErasureOut(contact_id=contact_id, erased=erased)
