"""Rendering operator-written templates safely.

ImmutableSandboxedEnvironment keeps templates away from Python internals; StrictUndefined turns a
typo into an error naming the variable instead of a silent blank in a message sent to thousands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from contact_center.contacts.documents import format_cpf
from contact_center.money import format_brl


class TemplateError(ValueError):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


def _brl(value) -> str:
    """1234.5 → 'R$ 1.234,50' (Brazilian thousands and decimal separators)."""
    try:
        return format_brl(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise TemplateError(f"brl: {value!r} is not a number") from None


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters["brl"] = _brl
    return env


# Scopes are plain attribute holders: templates never see ORM objects (no session, no metadata).
@dataclass(frozen=True)
class ContactScope:
    name: str
    first_name: str
    phone: str
    mobile: str
    email: str
    document: str
    notes: str


@dataclass(frozen=True)
class UserScope:
    name: str
    username: str


@dataclass(frozen=True)
class CompanyScope:
    name: str
    phone: str


def contact_scope(contact) -> ContactScope:
    name = (contact.name or "").strip()
    return ContactScope(
        name=name, first_name=name.split(" ")[0] if name else "",
        phone=contact.phone_e164 or contact.phone or "", mobile=contact.mobile_e164 or contact.mobile or "",
        email=contact.email or "", document=format_cpf(contact.document) if contact.document else "",
        notes=contact.notes or "",
    )


_SCOPE_NAMES = {"ContactScope": "contact", "UserScope": "user", "CompanyScope": "company"}
_MISSING_ATTRIBUTE = re.compile(r"'(?:[\w.]+\.)?(\w+) object' has no attribute '(\w+)'")


def _template_line(exc: BaseException) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _explain_undefined(exc: UndefinedError) -> str:
    message = str(exc)
    match = _MISSING_ATTRIBUTE.search(message)
    if match and match.group(1) in _SCOPE_NAMES:
        scope = _SCOPE_NAMES[match.group(1)]
        known = ", ".join(f"{scope}.{field}" for field in globals()[match.group(1)].__dataclass_fields__)
        return f"unknown variable '{scope}.{match.group(2)}' (known: {known})"
    if message.endswith("is undefined"):
        return f"unknown variable {message.removesuffix(' is undefined')} (known: contact, user, company)"
    return message


def compile_template(source: str):
    try:
        return environment().from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error: {exc.message}", exc.lineno) from None


def render(source: str, *, contact: ContactScope, user: UserScope, company: CompanyScope) -> str:
    return render_compiled(compile_template(source), contact=contact, user=user, company=company)


def render_compiled(template, *, contact: ContactScope, user: UserScope, company: CompanyScope) -> str:
    """Render an already compiled template (bulk sends compile once, render thousands of times)."""
    try:
        return template.render(contact=contact, user=user, company=company).strip()
    except SecurityError as exc:
        raise TemplateError(f"refused: templates cannot reach Python internals ({exc})", _template_line(exc)) from None
    except UndefinedError as exc:
        raise TemplateError(_explain_undefined(exc), _template_line(exc)) from None
    except TemplateError:
        raise
    except Exception as exc:  # a filter or operation failed on the data: report, don't crash a bulk send
        raise TemplateError(f"{exc.__class__.__name__}: {exc}", _template_line(exc)) from None
