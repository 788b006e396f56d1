from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from contact_center.contacts import fields

from contact_center.audit.service import record
from contact_center.auth.models import User
from contact_center.contacts.models import Contact
from contact_center.errors import Conflict, InvalidInput, NotFound
from contact_center.settings import Settings
from contact_center.templates.budget import TemplateBudget
from contact_center.templates.models import Template
from contact_center.templates.rendering import (
    CompanyScope, TemplateBudgetError, TemplateError, UserScope, compile_template, contact_scope, render_compiled,
)

SAMPLE_CONTACT = Contact(name="Maria Exemplo", mobile="+55 11 90000-0001", mobile_e164="+5511900000001",
                         email="maria@example.com", document="52998224725")


_SAMPLE_VALUES = {"text": "exemplo", "integer": 12, "money": Decimal("1234.56"), "date": date(2025, 11, 15),
                  "boolean": True}


def _sample_values(definitions: list[fields.FieldDefinition]) -> dict:
    """A value of every defined field for the sample contact, so a check renders each `contact.<key>`."""
    return {d.key: d.choices[0] if d.type == "choice" else _SAMPLE_VALUES[d.type] for d in definitions}


def _check_source(session: Session, body: str, user: User | None, settings: Settings) -> None:
    """A body worth saving: not blank, compiles, and renders for the sample contact within the budget
    (which also catches unknown variables before anyone sends it)."""
    if not body.strip():
        raise InvalidInput("a template needs a body", field="body")
    try:
        _renderer(body, user, settings, session)(SAMPLE_CONTACT)
    except TemplateError as exc:
        raise InvalidInput(exc, field="body") from None


def _renderer(body: str, user: User | None, settings: Settings, session: Session | None) -> Callable[[Contact], str]:
    """`session` gives the business's fields: read once here, and each contact's values from its
    `field_values` (bulk readers load them with the contacts, see campaigns.service)."""
    budget = TemplateBudget.from_settings(settings)
    try:
        template = compile_template(body, budget)
    except TemplateError as exc:
        raise InvalidInput(exc, field="body") from None
    user_scope = UserScope(name=user.name, username=user.username) if user else UserScope(name="", username="")
    company = CompanyScope(name=settings.company_name, phone=settings.company_phone)
    definitions = fields.definitions(session) if session is not None else []
    keys = tuple(d.key for d in definitions)
    sample = _sample_values(definitions)

    def render(contact: Contact) -> str:
        values = sample if contact is SAMPLE_CONTACT else fields.values_of(contact)
        return render_compiled(template, contact=contact_scope(contact, values, keys), user=user_scope,
                               company=company, budget=budget)

    return render


def renderer(body: str, user: User | None, settings: Settings, session: Session) -> Callable[[Contact], str]:
    """`body` compiled once (a syntax error raises InvalidInput), as a function that renders it for a
    contact and raises TemplateError for what only shows per contact (an unknown variable, unsafe access,
    a contact whose data makes the render pass the budget).

    A body that passes the budget for the sample contact passes it for everyone: it raises
    InvalidInput here, rather than spending the whole budget on each of 100k recipients."""
    render = _renderer(body, user, settings, session)
    try:
        render(SAMPLE_CONTACT)
    except TemplateBudgetError as exc:
        raise InvalidInput(exc, field="body") from None
    except TemplateError:
        pass  # reported per recipient, with the recipient
    return render


def render_for(body: str, contact: Contact, user: User | None, settings: Settings,
               session: Session | None = None) -> str:
    """Render `body` for one contact within the template budget; unknown variables, unsafe access and
    passing a limit raise InvalidInput. The business's fields come from `session`, else the contact's."""
    render = _renderer(body, user, settings, session or object_session(contact))
    try:
        return render(contact)
    except TemplateError as exc:
        raise InvalidInput(exc, field="body") from None


def create_template(session: Session, *, name: str, body: str, description: str | None, user: User | None,
                    settings: Settings, via: str = "api") -> Template:
    name = name.strip()
    if not name:
        raise InvalidInput("a template needs a name", field="name")
    _check_source(session, body, user, settings)
    if session.scalar(select(Template.id).where(Template.name == name)) is not None:
        raise Conflict("a template named '{name}' already exists", name=name, field="name")
    template = Template(name=name, body=body, description=description, updated_by_id=user.id if user else None)
    session.add(template)
    session.flush()
    record(session, action="template.create", subject_type="template", subject_id=template.id,
           actor_id=user.id if user else None, via=via, name=name)
    return template


def update_template(session: Session, template: Template, *, name: str | None, body: str | None,
                    description: str | None, user: User | None, settings: Settings, via: str = "api") -> Template:
    if body is not None:
        _check_source(session, body, user, settings)
    if name is not None and name.strip() != template.name:
        if session.scalar(select(Template.id).where(Template.name == name.strip())) is not None:
            raise Conflict("a template named '{name}' already exists", field="name", name=name.strip())
        template.name = name.strip()
    if body is not None:
        template.body = body
    if description is not None:
        template.description = description
    template.updated_by_id = user.id if user else None
    session.flush()
    record(session, action="template.update", subject_type="template", subject_id=template.id,
           actor_id=user.id if user else None, via=via, name=template.name)
    return template


def get_template(session: Session, template_id: int) -> Template:
    template = session.get(Template, template_id)
    if template is None:
        raise NotFound("no template with id {template_id}", template_id=template_id)
    return template


def get_template_by_name(session: Session, name: str) -> Template:
    template = session.scalar(select(Template).where(Template.name == name))
    if template is None:
        raise NotFound("no template named '{name}'", name=name)
    return template


def list_templates(session: Session) -> list[Template]:
    return list(session.scalars(select(Template).order_by(Template.name)))


def delete_template(session: Session, template: Template, user: User | None, via: str = "api") -> None:
    record(session, action="template.delete", subject_type="template", subject_id=template.id,
           actor_id=user.id if user else None, via=via, name=template.name)
    session.delete(template)
    session.flush()
