"""Sending a WhatsApp approved template: validated against the definition synced from Meta before
anything is queued (parameter count, names, formats, header media, buttons), so a mismatch is an
error naming the parameter here, not a 132000 from Meta later. A marketing template to a customer
who stopped marketing is kept as blocked, with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from contact_center.channels import whatsapp_templates
from contact_center.channels.kinds import MARKETING_STOPPED
from contact_center.channels.models import Channel
from contact_center.contacts.models import Contact
from contact_center.errors import InvalidInput
from contact_center.messaging import service
from contact_center.messaging.models import Message
from contact_center.providers.whatsapp_cloud.templates import TemplateValues, build_components


def values_from(parameters: Mapping[str, Any] | None) -> TemplateValues:
    """The API's `parameters` ({"body": [...] or {...}, "header": ..., "header_media": {...},
    "buttons": {"0": "..."}}) as the validator takes them."""
    parameters = parameters or {}
    try:
        buttons = {int(index): str(value) for index, value in (parameters.get("buttons") or {}).items()}
    except (TypeError, ValueError):
        raise InvalidInput("parameters.buttons: give each button's parameter by its index, e.g. {\"0\": \"abc\"}",
                           field="parameters.buttons") from None
    return TemplateValues(body=parameters.get("body") or (), header=parameters.get("header") or (),
                          header_media=parameters.get("header_media"), buttons=buttons)


def queue_template(session: Session, *, channel: Channel, phone: str, contact: Contact | None, template_id: int,
                   parameters: Mapping[str, Any] | None, origin: str, author_id: int | None = None,
                   via: str = "api", refuse_opted_out: bool = False) -> Message:
    template = whatsapp_templates.get_template(session, channel.id, template_id)
    definition = whatsapp_templates.definition(template)
    values = values_from(parameters)
    components = build_components(definition, values)  # InvalidInput naming the parameter
    blocked = (MARKETING_STOPPED if definition.category.upper() == "MARKETING" and contact is not None
               and contact.opt_out_marketing else None)
    content = {"template_id": template.id, "name": definition.name, "language": definition.language,
               "category": definition.category, "components": components}
    return service.queue_outbound(session, channel=channel, phone=phone, body=definition.preview(values),
                                  contact=contact, origin=origin, author_id=author_id, via=via,
                                  content_type="template", content=content, blocked_reason=blocked,
                                  refuse_opted_out=refuse_opted_out)
