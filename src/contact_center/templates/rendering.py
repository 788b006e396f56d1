"""Rendering operator-written templates safely.

The sandbox (sandbox.py) keeps templates away from Python internals and sizes every operation;
the budget (budget.py) bounds the CPU time and output of each compile and each render.
StrictUndefined turns a typo into an error naming the variable instead of a silent blank in a
message sent to thousands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, DecimalException
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SecurityError

from contact_center.contacts.documents import format_cpf
from contact_center.errors import InvalidValue
from contact_center.money import format_brl
from contact_center.templates.budget import (
    MAX_SOURCE_CHARACTERS, TEMPLATE_FILENAME, BudgetExceeded, TemplateBudget, run,
)
from contact_center.templates.sandbox import BudgetedEnvironment, NotAvailable, repeats_work
from contact_center.translations import Quantity, Words


_AT_LINE = Words("line {line}: {problem}")


class TemplateError(InvalidValue):
    """A template that cannot be compiled or rendered: the sentence that says why, and its line."""

    def __init__(self, message: str | Words, line: int | None = None, **params):
        problem = Words(message, **params)
        if line:
            super().__init__(_AT_LINE, line=line, problem=problem)
        else:
            super().__init__(problem)
        self.line = line


class TemplateBudgetError(TemplateError):
    """A template refused for passing a limit; `limit` names it (cpu_seconds, max_output_bytes…)."""

    def __init__(self, message: str | Words, line: int | None, limit: str):
        super().__init__(message, line)
        self.limit = limit


def _brl(value) -> str:
    """1234.5 → 'R$ 1.234,50' (Brazilian thousands and decimal separators)."""
    if type(value) in (int, float):
        return _brl_of_number(value)
    if isinstance(value, Decimal):  # a money field
        return format_brl(value)
    if isinstance(value, NoValue):
        raise TemplateError("brl: {key} has no value for this contact", key=value.key)
    try:
        return format_brl(Decimal(str(value)))
    except (DecimalException, ValueError):  # not a number, or too big to show ('1e999999999')
        raise TemplateError("brl: {value} is not a number", value=repr(value)) from None


@lru_cache(maxsize=4096, typed=True)
def _brl_of_number(value: int | float) -> str:
    """A number written in the template ({{ 149.9|brl }}) is the same for every recipient of a bulk
    send: formatted once (Jinja used to fold it while compiling, which templates no longer allow)."""
    try:
        return format_brl(Decimal(str(value)))
    except (DecimalException, ValueError):
        raise TemplateError("brl: {value} is not a number", value=repr(value)) from None


def _data(value) -> str:
    """A date as Brazilians write it: date(2025, 11, 15) → '15/11/2025' (a date field, or '2025-11-15')."""
    if isinstance(value, NoValue):
        raise TemplateError("data: {key} has no value for this contact", key=value.key)
    if isinstance(value, (date, datetime)):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).strftime("%d/%m/%Y")
        except ValueError:
            pass
    raise TemplateError("data: {value} is not a date", value=repr(str(value)[:40]))


class NoValue(str):
    """A field the contact has no value of: renders as nothing, and `brl` or `data` on it says which
    field is missing instead of sending "R$ " to a customer."""

    def __new__(cls, key: str):
        blank = super().__new__(cls, "")
        blank.key = key
        return blank


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
    # The business's fields (contacts/fields.py), typed, read as contact.<key>; hidden from
    # templates themselves by its leading underscore.
    _custom: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str):
        custom = object.__getattribute__(self, "_custom")
        if name in custom:
            return custom[name]
        raise AttributeError(name)

    def _known(self) -> list[str]:
        return [name for name in self.__dataclass_fields__ if not name.startswith("_")] + list(self._custom)


class ObjectScope(ContactScope):
    """The contact under the name templates written for Odoo give it (`object.name`), so that an
    unknown `object.x` is reported as written."""

    @classmethod
    def alias(cls, contact: ContactScope) -> ObjectScope:
        scope = object.__new__(cls)
        scope.__dict__.update(contact.__dict__)
        return scope


@dataclass(frozen=True)
class UserScope:
    name: str
    username: str


@dataclass(frozen=True)
class CompanyScope:
    name: str
    phone: str


def contact_scope(contact, custom: Mapping[str, Any] | None = None, keys: list[str] | tuple[str, ...] = ()
                  ) -> ContactScope:
    """`custom`: the contact's field values by key (typed); `keys`: every defined field, so that a
    field this contact has no value of is known (NoValue) rather than an unknown variable."""
    name = (contact.name or "").strip()
    values = {key: NoValue(key) for key in keys} | dict(custom or {})
    return ContactScope(
        name=name, first_name=name.split(" ")[0] if name else "",
        phone=contact.phone_e164 or contact.phone or "", mobile=contact.mobile_e164 or contact.mobile or "",
        email=contact.email or "", document=format_cpf(contact.document) if contact.document else "",
        notes=contact.notes or "", _custom=values,
    )


_SCOPE_NAMES = {"ContactScope": "contact", "ObjectScope": "object", "UserScope": "user", "CompanyScope": "company"}
_MISSING_ATTRIBUTE = re.compile(r"'(?:[\w.]+\.)?(\w+) object' has no attribute '(\w+)'")


@lru_cache(maxsize=1)
def environment() -> BudgetedEnvironment:
    return BudgetedEnvironment(extra_filters={"brl": _brl, "data": _data}, scope_types=(ContactScope, ObjectScope, UserScope, CompanyScope))


def _template_line(exc: BaseException, template: Template | None = None) -> int | None:
    """The template line of the innermost template frame in the traceback (Jinja's own traceback
    rewriting is not used: renders run the template's code directly)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEMPLATE_FILENAME:
            line = template.get_corresponding_lineno(tb.tb_lineno) if template is not None else tb.tb_lineno
        tb = tb.tb_next
    return line


def _explain_undefined(exc: UndefinedError, contact: ContactScope) -> Words:
    message = str(exc)
    match = _MISSING_ATTRIBUTE.search(message)
    if match and match.group(1) in _SCOPE_NAMES:
        scope = _SCOPE_NAMES[match.group(1)]
        names = contact._known() if scope in ("contact", "object") else globals()[match.group(1)].__dataclass_fields__
        known = ", ".join(f"{scope}.{name}" for name in names)
        return Words("unknown variable '{variable}' (known: {known})", variable=f"{scope}.{match.group(2)}",
                     known=known)
    if message.endswith("is undefined"):
        return Words("unknown variable {variable} (known: contact, object, user, company)",
                     variable=message.removesuffix(" is undefined"))
    return Words("{problem}", problem=message)


@dataclass(frozen=True)
class CompiledTemplate:
    template: Template
    repeats_work: bool  # loops, macros, calls…: rendered under the CPU tracer


def compile_template(source: str, budget: TemplateBudget | None = None) -> CompiledTemplate:
    """Compile `source` within `budget` (compiling is work too: the source is capped, and the
    lexer, parser and code generator run under the CPU tracer)."""
    budget = budget or TemplateBudget.default()
    if len(source) > MAX_SOURCE_CHARACTERS:
        raise TemplateError("the template has {length} characters; the limit is {limit}", length=Quantity(len(source)),
                            limit=Quantity(MAX_SOURCE_CHARACTERS))
    env = environment()

    def work() -> CompiledTemplate:
        ast = env.parse(source)
        return CompiledTemplate(env.from_string(ast), repeats_work(ast))

    try:
        return run(budget, work, traced=True)
    except TemplateSyntaxError as exc:
        raise TemplateError("syntax error: {problem}", exc.lineno, problem=exc.message) from None
    except BudgetExceeded as exc:
        raise TemplateBudgetError(exc.message, None, exc.limit) from None
    except (RecursionError, MemoryError, SyntaxError):  # the parser's recursion, or Python's own nesting limits
        raise TemplateError("the template is nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        if "digits" in str(exc):  # a number literal longer than Python converts
            raise TemplateError("a number written in the template is too long") from None
        raise TemplateError("cannot compile: {problem}", problem=exc) from None


def render(source: str, *, contact: ContactScope, user: UserScope, company: CompanyScope,
           budget: TemplateBudget | None = None) -> str:
    return render_compiled(compile_template(source, budget), contact=contact, user=user, company=company,
                           budget=budget)


def _collect(pieces, budget: TemplateBudget) -> str:
    """The template's output, stopped as soon as it passes the size limit."""
    limit = budget.max_output_bytes
    collected = []
    characters = 0
    for piece in pieces:
        characters += len(piece)  # a character is at least one UTF-8 byte
        if characters > limit:
            raise budget.output_refusal()
        collected.append(piece)
    text = "".join(collected)
    if characters * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise budget.output_refusal()
    return text


def render_compiled(compiled: CompiledTemplate, *, contact: ContactScope, user: UserScope, company: CompanyScope,
                    budget: TemplateBudget | None = None) -> str:
    """Render an already compiled template (bulk sends compile once, render thousands of times),
    each render with the whole budget."""
    budget = budget or TemplateBudget.default()
    template = compiled.template

    def work() -> str:
        # `object`: templates written for Odoo name the contact so; they keep working here.
        context = template.new_context({"contact": contact, "object": ObjectScope.alias(contact), "user": user, "company": company})
        return _collect(template.root_render_func(context), budget)

    try:
        return run(budget, work, traced=compiled.repeats_work).strip()
    except BudgetExceeded as exc:
        raise TemplateBudgetError(exc.message, _template_line(exc, template), exc.limit) from None
    except NotAvailable as exc:
        raise TemplateError("refused: {problem}", _template_line(exc, template), problem=exc) from None
    except SecurityError as exc:
        raise TemplateError("refused: templates cannot reach Python internals ({problem})",
                            _template_line(exc, template), problem=exc) from None
    except UndefinedError as exc:
        raise TemplateError(_explain_undefined(exc, contact), _template_line(exc, template)) from None
    except TemplateError:
        raise
    except RecursionError as exc:
        raise TemplateError("the template calls itself too deeply", _template_line(exc, template)) from None
    except Exception as exc:  # a filter or operation failed on the data: report, don't crash a bulk send
        raise TemplateError("{error}: {problem}", _template_line(exc, template), error=exc.__class__.__name__,
                            problem=exc) from None
