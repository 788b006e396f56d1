"""What a campaign sends each recipient: an SMS text rendered from its template, or a WhatsApp
approved template whose parameters are rendered from the contact's fields and then checked
against the synced definition (count, names, formats), recipient by recipient."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from contact_center.auth.models import User
from contact_center.channels import whatsapp_templates
from contact_center.channels.kinds import MARKETING_STOPPED, ChannelKind, kind_of
from contact_center.channels.models import Channel
from contact_center.contacts.models import Contact
from contact_center.errors import InvalidInput, InvalidValue
from contact_center.messaging.approved_templates import values_from
from contact_center.providers.whatsapp_cloud.templates import build_components
from contact_center.settings import Settings
from contact_center.templates.rendering import TemplateError
from contact_center.templates.service import SAMPLE_CONTACT, renderer
from contact_center.translations import Words


@dataclass(frozen=True)
class Content:
    text: str  # what the timeline shows (a template's body with its values)
    content_type: str = "text"
    content: dict | None = None
    blocked_reason: Words | None = None


class NotSendable(InvalidValue):
    """This recipient's message cannot be built (a parameter the template refuses)."""


Render = Callable[[Contact], Content]


def bulk_kind(channel: Channel, templated: bool) -> ChannelKind:
    """The channel's kind, if a campaign of this sort can go on it."""
    kind = kind_of(channel)
    if not kind.bulk_free_text and not templated:
        raise InvalidInput("a campaign on {kind_label} sends an approved template, not free text: give "
                           "whatsapp_template_id and its parameters",
                           kind_label=kind.label, field="whatsapp_template_id")
    if kind.bulk_free_text and templated:
        raise InvalidInput("'{channel_name}' is an {kind_label} channel: approved templates are WhatsApp's; give a "
                           "body", channel_name=channel.name, kind_label=kind.label, field="whatsapp_template_id")
    return kind


def render_for(session: Session, channel: Channel, *, body: str | None, whatsapp_template_id: int | None,
               parameters: dict | None, user: User | None, settings: Settings) -> Render:
    """The function that builds each recipient's message; checked once, with the sample contact,
    so a template variable nobody has, or a parameter the WhatsApp template does not take,
    refuses the campaign naming it instead of failing every recipient."""
    bulk_kind(channel, whatsapp_template_id is not None)
    if whatsapp_template_id is None:
        text = renderer(body or "", user, settings, session)
        render = check = lambda contact: Content(text(contact))  # noqa: E731
    else:
        render = _template_render(session, channel, whatsapp_template_id, parameters or {}, user, settings)
        check = lambda contact: render(contact, stand_in=True)  # noqa: E731
    try:
        check(SAMPLE_CONTACT)
    except TemplateError as exc:
        raise InvalidInput("the template cannot be sent: {exc}", exc=exc, field="body" if body is not None else
                           "parameters") from None
    except NotSendable as exc:
        raise InvalidInput(exc, field="parameters") from None
    return render


def _template_render(session: Session, channel: Channel, template_id: int, parameters: dict, user: User | None,
                     settings: Settings) -> Render:
    template = whatsapp_templates.get_template(session, channel.id, template_id)  # NotFound names it
    definition = whatsapp_templates.definition(template)
    # Each parameter is a little template of its own ("{{ contact.first_name }}"), compiled once.
    compiled = {source: renderer(source, user, settings, session) for source in _strings(parameters)}
    marketing = definition.category.upper() == "MARKETING"
    head = {"template_id": template.id, "name": definition.name, "language": definition.language,
            "category": definition.category}

    def render(contact: Contact, stand_in: bool = False) -> Content:
        """`stand_in`: a value that comes out empty for this contact is taken as given, to check
        the parameters' shape (count, names) apart from any one contact's data."""
        empty = "exemplo" if stand_in else ""
        filled = _fill(parameters, lambda source: compiled[source](contact).strip() or empty)
        try:
            values = values_from(filled)
            components = build_components(definition, values)
        except InvalidInput as exc:
            raise NotSendable(exc) from None
        blocked = MARKETING_STOPPED if marketing and getattr(contact, "opt_out_marketing", False) else None
        return Content(definition.preview(values), "template", {**head, "components": components}, blocked)

    return render


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _fill(value: Any, render: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return render(value)
    if isinstance(value, dict):
        return {key: _fill(item, render) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, render) for item in value]
    return value
