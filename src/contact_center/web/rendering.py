"""Jinja2 for the UI: templates from the package, everything autoescaped, a few display filters.

Autoescaping is what makes a customer's `<img src=x onerror=alert(1)>` show as those characters:
no template marks provider or user text as safe, and the browser script inserts only fragments
rendered here or plain text (textContent).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from importlib import resources
from zoneinfo import ZoneInfo

import phonenumbers
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from contact_center import __version__
from contact_center.contacts.documents import format_cpf
from contact_center.web import session as web_session
from contact_center.translations import number
from contact_center.web.i18n import LANGUAGES, page_language, script_strings_json, translator
from contact_center.contacts.fields import as_text as field_text

try:
    LOCAL_ZONE = ZoneInfo("America/Sao_Paulo")
except Exception:  # no time zone database on this machine: show UTC rather than fail
    LOCAL_ZONE = UTC

SECURITY_HEADERS = {
    # No inline script or style anywhere in the UI, so the policy can forbid both.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _static_version() -> str:
    digest = hashlib.sha256(__version__.encode())
    for item in sorted(resources.files("contact_center.web").joinpath("static").iterdir(), key=lambda p: p.name):
        if item.is_file():
            digest.update(item.read_bytes())
    return digest.hexdigest()[:10]


def pretty_phone(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def _local(value: datetime) -> datetime:
    return value.astimezone(LOCAL_ZONE)


def short_time(value: datetime | None, lang: str = "pt-BR", *, seconds: bool = False) -> str:
    """14:32 today; 24/11 14:32 (or 11/24) on another day this year; with the year before that.
    `seconds`: 14:32:05, for what happens seconds apart (the tries at sending a message)."""
    if value is None:
        return ""
    local, today = _local(value), datetime.now(LOCAL_ZONE)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if local.date() == today.date():
        return clock
    day = local.strftime("%d/%m" if lang == "pt-BR" else "%m/%d")
    if local.year != today.year:
        day += local.strftime("/%Y")
    return f"{day} {clock}"


def percent(value: float | None, lang: str = "pt-BR") -> str:
    """12,5% (or 12.5%), 100%; "—" for a rate with nothing to count yet."""
    if value is None:
        return "—"
    text = f"{value * 100:.1f}".removesuffix(".0")
    return (text.replace(".", ",") if lang == "pt-BR" else text) + "%"


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def initials(text: str) -> str:
    words = [w for w in (text or "").replace("+", " ").split() if w[:1].isalpha()]
    if not words:
        return "#"
    return (words[0][0] + (words[-1][0] if len(words) > 1 else "")).upper()


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("contact_center.web", "templates"),
                      autoescape=select_autoescape(["html"], default_for_string=True, default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(phone=pretty_phone, iso=iso, initials=initials, cpf=format_cpf, field_text=field_text)
    env.globals.update(languages=LANGUAGES, static_version=_static_version())
    return env


ENV = _environment()


def context(request: Request, user=None, **values) -> dict:
    lang = page_language(request)
    t = translator(lang)
    return {"request": request, "user": user, "lang": lang, "t": t, "csrf": web_session.csrf_token(request),
            "when": lambda value, seconds=False: short_time(value, lang, seconds=seconds),
            "number": lambda value: number(value, lang),
            "rate": lambda value: percent(value, lang),
            "say": t.say,
            "strings_json": Markup(script_strings_json(lang)), **values}


def render(request: Request, name: str, user=None, status_code: int = 200, **values) -> HTMLResponse:
    html = ENV.get_template(name).render(context(request, user, **values))
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    web_session.persist_if_new(request, response)
    return response


def fragment(request: Request, name: str, user=None, **values) -> HTMLResponse:
    html = ENV.get_template(name).render(context(request, user, **values))
    return HTMLResponse(html, headers={"Cache-Control": "no-store", **SECURITY_HEADERS})
