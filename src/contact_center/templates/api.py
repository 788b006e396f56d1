from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response, status

from contact_center.contacts.service import get_contact
from contact_center.deps import AgentUser, DbSession, SupervisorUser
from contact_center.messaging.segments import count_segments
from contact_center.templates import service
from contact_center.templates.schemas import (
    TemplateCreate, TemplateOut, TemplatePreview, TemplatePreviewRequest, TemplateUpdate,
)
from contact_center.routes import CheckedRoute

router = APIRouter(prefix="/api/templates", tags=["templates"], route_class=CheckedRoute)


@router.get("", response_model=list[TemplateOut])
def list_templates(session: DbSession, _: AgentUser):
    return service.list_templates(session)


@router.post("", response_model=TemplateOut, status_code=status.HTTP_201_CREATED)
def create_template(body: TemplateCreate, request: Request, session: DbSession, user: SupervisorUser):
    return service.create_template(session, name=body.name, body=body.body, description=body.description,
                                   user=user, settings=request.app.state.settings)


@router.get("/{template_id}", response_model=TemplateOut)
def get_template(template_id: int, session: DbSession, _: AgentUser):
    return service.get_template(session, template_id)


@router.patch("/{template_id}", response_model=TemplateOut)
def update_template(template_id: int, body: TemplateUpdate, request: Request, session: DbSession, user: SupervisorUser):
    template = service.get_template(session, template_id)
    return service.update_template(session, template, name=body.name, body=body.body, description=body.description,
                                   user=user, settings=request.app.state.settings)


@router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_template(template_id: int, session: DbSession, user: SupervisorUser):
    service.delete_template(session, service.get_template(session, template_id), user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{template_id}/preview", response_model=TemplatePreview)
def preview_template(template_id: int, body: TemplatePreviewRequest, request: Request, session: DbSession,
                     user: AgentUser):
    template = service.get_template(session, template_id)
    contact = get_contact(session, body.contact_id) if body.contact_id else service.SAMPLE_CONTACT
    text = service.render_for(body.body or template.body, contact, user, request.app.state.settings, session)
    return TemplatePreview(text=text, segments=asdict(count_segments(text)))
