"""The contacts workspace: the list (search, keyset pages, export), a contact's page (data and its
edit form, opt-outs with who changed them, every message and conversation, "Nova conversa"), and
the CSV import (upload, mapping with a preview, dry run, import with progress, rejections file).

Forms post here with the session's CSRF token; a refused change rolls back and shows the page again
with the reason next to the field, in Portuguese. Contacts are read and written through
contacts.service, messages sent through inbox.workflow, imports through contacts.imports.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile as StarletteUploadFile

from contact_center import phones
from contact_center.audit.service import latest
from contact_center.auth.models import User
from contact_center.channels import service as channels
from contact_center.channels.kinds import kind_of
from contact_center.contacts import csv_io, imports
from contact_center.contacts import fields as contact_fields
from contact_center.contacts import tags as contact_tags
from contact_center.contacts import service as contacts
from contact_center.contacts.csv_io import FIELD_LABELS, FIELDS
from contact_center.contacts.duplicates import DuplicateContact
from contact_center.contacts.models import Contact, ContactImport
from contact_center.contacts.schemas import ContactCreate, ContactUpdate
from contact_center.deps import DbSession
from contact_center.errors import DomainError, InvalidInput
from contact_center.inbox import queries, workflow
from contact_center.inbox.models import Conversation
from contact_center.inbox.visibility import is_staff
from contact_center.messaging.service import window_seconds_left
from contact_center.routes import CheckedRoute
from contact_center.unit_of_work import after_commit
from contact_center.translations import Words
from contact_center.web import session as web_session
from contact_center.web.admin import SupervisorPageUser
from contact_center.web.contact_merge import merged_notice
from contact_center.web.pages import approved_template_fields
from contact_center.web.rendering import render
from contact_center.web.session import PageUser

log = logging.getLogger(__name__)
router = APIRouter(prefix="/contacts", include_in_schema=False, route_class=CheckedRoute)

PAGE_SIZE = 50
# The list counts matches up to here and says "more than" beyond: no page reads a million rows.
COUNT_CAP = 10_000
MESSAGES_PAGE = 50
EDIT_FIELDS = ("name", "mobile", "phone", "email", "document", "notes")
OPT_OUTS = ("opt_out_sms", "opt_out_whatsapp", "opt_out_marketing")


# --- the list ------------------------------------------------------------------------------------------

@dataclass
class ContactFilter:
    """What the list shows, read from the query string; the export takes the same: a search, tags
    (`tag=`, every one of them; or `tags=` written "a, b") and the business's fields (`field.<key>=`,
    `field.<key>_from=`, `_to=`, as the API takes them)."""

    search: str = ""
    tags: list[str] = field(default_factory=list)
    field_filters: list = field(default_factory=list)  # contacts.fields.FieldFilter
    field_params: dict[str, str] = field(default_factory=dict)  # as written, to fill the form again
    params: list[tuple[str, str]] = field(default_factory=list)  # as they go back into links

    @property
    def any(self) -> bool:
        return bool(self.search or self.tags or self.field_filters)


def _filter_from(request: Request, session) -> ContactFilter:
    search = (request.query_params.get("q") or "").strip()[:100]
    written = request.query_params.getlist("tag") + (request.query_params.get("tags") or "").split(",")
    tags = contact_tags.clean([t for t in written if t.strip()][:10])
    field_params = {k: v.strip() for k, v in request.query_params.items() if k.startswith("field.") and v.strip()}
    params = ([("q", search)] if search else []) + [("tag", t) for t in tags] + list(field_params.items())
    return ContactFilter(search=search, tags=tags, field_params=field_params, params=params,
                         field_filters=contact_fields.parse_filters(session, field_params.items()))


def _cursor(value: str | None, name: str) -> int | None:
    if not value:
        return None
    if not (value.isdigit() and len(value) <= 10):
        raise InvalidInput("{name}: esperado o número de um contato, não '{value}'", field=name, name=name,
                           value=value[:20])
    return int(value)


@router.get("")
def list_page(request: Request, session: DbSession, user: PageUser):
    filter_ = _filter_from(request, session)
    query = urlencode(filter_.params)
    definitions = contact_fields.definitions(session)
    if filter_.field_filters:
        # Ordered by the first field filtered (the due dates of a month, earliest first): paged by offset.
        offset = _cursor(request.query_params.get("offset"), "offset") or 0
        found, total = contacts.list_contacts(session, search=filter_.search or None, tags_=filter_.tags or None,
                                              field_filters=filter_.field_filters, offset=offset,
                                              limit=PAGE_SIZE + 1)
        rows, cap = found[:PAGE_SIZE], contact_fields.COUNT_LIMIT
        older = f"?{urlencode([*filter_.params, ('offset', offset + PAGE_SIZE)])}" if len(found) > PAGE_SIZE else None
        newer = f"?{urlencode([*filter_.params, ('offset', max(0, offset - PAGE_SIZE))])}" if offset else None
    else:
        before = _cursor(request.query_params.get("before"), "before")
        after = _cursor(request.query_params.get("after"), "after")
        # One more than a page tells whether there is a next one.
        found, total = contacts.list_contacts(session, search=filter_.search or None, tags_=filter_.tags or None,
                                              limit=PAGE_SIZE + 1, newest_first=True, before_id=before,
                                              after_id=after, count_cap=COUNT_CAP + 1)
        if after is not None:
            has_newer, rows = len(found) > PAGE_SIZE, found[-PAGE_SIZE:]
            has_older = True
        else:
            has_newer, rows = before is not None, found[:PAGE_SIZE]
            has_older = len(found) > PAGE_SIZE
        cap = COUNT_CAP
        older = f"?{urlencode([*filter_.params, ('before', rows[-1].id)])}" if has_older and rows else None
        newer = f"?{urlencode([*filter_.params, ('after', rows[0].id)])}" if has_newer and rows else None
    return render(request, "contacts.html", user, rows=rows, total=min(total, cap), more_than=total > cap,
                  filter=filter_, query=query, older=older, newer=newer, definitions=definitions,
                  staff=is_staff(user), active_nav="contacts")


@router.get("/export.csv")
def export(request: Request, session: DbSession, user: SupervisorPageUser):
    """The contacts the list shows with this filter, every page of them, as CSV (csv_io's export)."""
    filter_ = _filter_from(request, session)
    folder = request.app.state.settings.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix="export-", suffix=".csv", delete=False)
    handle.close()
    try:
        written = csv_io.export_contacts(session, handle.name, search=filter_.search or None,
                                         tags_=filter_.tags or None, field_filters=filter_.field_filters or None)
    except BaseException:
        os.unlink(handle.name)
        raise
    log.info("contacts export by %s: %d contacts (search %r)", user.username, written, filter_.search)
    return FileResponse(handle.name, media_type="text/csv; charset=utf-8", filename="contatos.csv",
                        background=BackgroundTask(os.unlink, handle.name))


# --- a contact ------------------------------------------------------------------------------------------

def _phone_of(contact: Contact) -> str | None:
    return contact.mobile_e164 or contact.phone_e164


def _channels_for(session, contact: Contact) -> list[dict]:
    """Each active channel with what "Nova conversa" needs to know: opted out, the conversation the
    contact's phone has there and, on WhatsApp, whether the 24-hour window is open."""
    phone = _phone_of(contact)
    key = phones.identify(phone).key if phone else None
    found = []
    for channel in channels.list_channels(session):
        if not channel.active:
            continue
        kind = kind_of(channel)
        conversation = session.scalar(select(Conversation).where(Conversation.channel_id == channel.id,
                                                                 Conversation.phone_key == key)) if key else None
        seconds = window_seconds_left(conversation, channel) if conversation is not None else (
            0 if kind.reply_window is not None else None)
        found.append({"channel": channel, "kind": kind, "opted_out": kind.opted_out(contact),
                      "conversation_id": conversation.id if conversation else None,
                      "window_open": seconds is None or seconds > 0,
                      "templates": approved_template_fields(session, channel.id) if channel.kind == "whatsapp" else []})
    return found


def _opt_out_history(session, contact: Contact) -> dict[str, dict]:
    """For each opt-out flag, its last change: set or cleared, by whom (or which path), when."""
    actions = [f"contact.{flag}{suffix}" for flag in OPT_OUTS for suffix in ("", ".cleared")]
    entries = latest(session, subject_type="contact", subject_id=contact.id, actions=actions)
    names = dict(session.execute(select(User.id, User.name).where(
        User.id.in_({e.actor_id for e in entries.values() if e.actor_id}))).all()) if entries else {}
    history = {}
    for flag in OPT_OUTS:
        changes = [e for e in (entries.get(f"contact.{flag}"), entries.get(f"contact.{flag}.cleared")) if e]
        if changes:
            last = max(changes, key=lambda e: e.id)
            history[flag] = {"set": not last.action.endswith(".cleared"), "at": last.at,
                             "by": names.get(last.actor_id), "via": last.via}
    return history


def _contact_page(request: Request, session, user: User, contact: Contact, *, errors: dict[str, str] | None = None,
                  values: dict | None = None, send_error: DomainError | None = None, sent: dict | None = None,
                  status_code: int = 200):
    before = _cursor(request.query_params.get("before"), "before")
    messages, has_older = queries.contact_messages(session, user, contact.id, before_id=before, limit=MESSAGES_PAGE)
    definitions = contact_fields.definitions(session)
    if values is None:
        held = contact.fields
        values = {f: getattr(contact, f) or "" for f in EDIT_FIELDS} | {"tags": ", ".join(contact.tags)} | {
            f"fields.{d.key}": contact_fields.as_text(d, held.get(d.key)) for d in definitions}
    return render(request, "contact.html", user, status_code=status_code, contact=contact,
                  values=values, errors=errors or {}, definitions=definitions,
                  conversations=queries.contact_conversations(session, user, contact.id),
                  messages=messages, older=messages[-1].message.id if has_older and messages else None,
                  paged=before is not None, send_channels=_channels_for(session, contact),
                  history=_opt_out_history(session, contact), opt_outs=OPT_OUTS, send_error=send_error,
                  sent=sent or {}, staff=is_staff(user),
                  merged=merged_notice(session, contact, request.query_params.get("merged")), active_nav="contacts")


@router.get("/new")
def new_page(request: Request, user: PageUser):
    return render(request, "contact_new.html", user, values={f: "" for f in EDIT_FIELDS}, errors={},
                  active_nav="contacts")


@router.post("/new")
async def create(request: Request, session: DbSession, user: PageUser):
    form = await request.form()
    web_session.check_csrf(request, form.get("csrf_token"))
    values = {f: str(form.get(f) or "").strip() for f in EDIT_FIELDS}
    data = {f: v or None for f, v in values.items()}
    errors = _problems(session, None, data, ContactCreate)
    if errors:
        return render(request, "contact_new.html", user, values=values, errors=_field_errors(session, errors, values),
                      status_code=422, active_nav="contacts")
    contact = contacts.create_contact(session, data)  # audited by the service, as by whom the session says
    log.info("contact %d created by %s", contact.id, user.username)
    return RedirectResponse(f"/contacts/{contact.id}?saved=1", status_code=303)


@router.get("/{contact_id:int}")
def contact_page(contact_id: int, request: Request, session: DbSession, user: PageUser):
    return _contact_page(request, session, user, contacts.get_contact(session, contact_id))


@router.post("/{contact_id:int}")
async def edit(contact_id: int, request: Request, session: DbSession, user: PageUser):
    """The edit form: every field checked as the API checks it; on any error nothing is saved and
    each wrong field says why."""
    form = await request.form()
    web_session.check_csrf(request, form.get("csrf_token"))
    contact = contacts.get_contact(session, contact_id)
    values = {f: str(form.get(f) or "").strip() for f in EDIT_FIELDS}
    changes: dict = {f: v or None for f, v in values.items() if (getattr(contact, f) or "") != v}
    values["tags"] = str(form.get("tags") or "").strip()
    tag_error = None
    try:
        written_tags = contact_tags.clean([t for t in values["tags"].split(",") if t.strip()])
        if written_tags != contact.tags:
            changes["tags"] = written_tags
    except DomainError as exc:
        tag_error = exc
    definitions = contact_fields.definitions(session)
    held = contact.fields
    custom = {}
    for definition in definitions:
        written = str(form.get(f"fields.{definition.key}") or "").strip()
        values[f"fields.{definition.key}"] = written
        if written != contact_fields.as_text(definition, held.get(definition.key)):
            custom[definition.key] = written or None  # emptied: the value is cleared
    if custom:
        changes["fields"] = custom
    if not changes and tag_error is None:
        return RedirectResponse(f"/contacts/{contact.id}", status_code=303)
    errors = _field_errors(session, _problems(session, contact.id, changes, ContactUpdate), values)
    if tag_error is not None:
        errors["tags"] = tag_error
    for key, written in custom.items():
        try:
            contact_fields.check_values({d.key: d for d in definitions}, {key: written})
        except DomainError as exc:
            errors[f"fields.{key}"] = exc
    if errors:
        return _contact_page(request, session, user, contact, errors=errors, values=values, status_code=422)
    contacts.update_contact(session, contact, changes)  # audited by the service
    log.info("contact %d updated by %s: %s", contact.id, user.username, ", ".join(sorted(changes)))
    return RedirectResponse(f"/contacts/{contact.id}?saved=1", status_code=303)


def _problems(session, contact_id: int | None, changes: dict, schema) -> dict[str, Exception]:
    """Every wrong field at once (field -> its error), checked as the API checks them: its schema,
    then the service's rules one field at a time on a copy that is never saved."""
    problems: dict[str, Exception] = {}
    try:
        schema.model_validate(changes)
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"]:
                problems.setdefault(str(error["loc"][0]), exc)
    for name, value in changes.items():
        if name in problems or name in ("tags", "fields"):  # checked by their own modules
            continue
        try:
            contacts.apply_changes(session, Contact(id=contact_id), {name: value})
        except DomainError as exc:
            problems.setdefault(exc.field or name, exc)
    return problems


def _field_errors(session, problems: dict[str, Exception], values: dict[str, str]) -> dict[str, Words]:
    """field -> what is wrong with it and what is expected, in the operator's words."""
    errors = {}
    for name, exc in problems.items():
        value = values.get(name, "")
        if name == "document" and isinstance(exc, DuplicateContact):  # it names the contact that has the CPF
            owner = session.get(Contact, exc.contact_id)
            errors[name] = Words("o CPF {value} já é de outro contato ({name}, nº {id}): cada CPF pertence a um só "
                                 "contato", value=value, name=owner.name, id=owner.id)
        else:
            errors[name] = Words(FIELD_ERRORS.get(name, INVALID_VALUE), value=value)
    return errors


INVALID_VALUE = Words("valor inválido")
FIELD_ERRORS = {
    "name": Words("informe o nome do contato (até 200 caracteres)"),
    "mobile": Words("«{value}» não é um celular válido: use DDD e número, como (11) 90000-0001, ou +DDI para outro "
                    "país"),
    "phone": Words("«{value}» não é um telefone válido: use DDD e número, como (11) 3000-0001, ou +DDI para outro "
                   "país"),
    "email": Words("«{value}» não é um e-mail válido: use o formato nome@empresa.com.br"),
    "document": Words("«{value}» não é um CPF válido: são 11 dígitos (com ou sem pontos e traço) com os dígitos "
                      "verificadores corretos"),
    "notes": Words("as observações têm no máximo 10.000 caracteres"),
}


@router.post("/{contact_id:int}/opt-out")
def set_opt_out(contact_id: int, request: Request, session: DbSession, user: PageUser, csrf_token: str = Form(""),
                flag: str = Form(""), value: str = Form("")):
    """Turn one opt-out on or off, recorded with who did it (shown on the page)."""
    web_session.check_csrf(request, csrf_token)
    contact = contacts.get_contact(session, contact_id)
    if flag not in OPT_OUTS or value not in ("on", "off"):
        raise InvalidInput("bloqueio desconhecido: esperado um de {flags} com on ou off", field="flag",
                           flags=", ".join(OPT_OUTS))
    if bool(getattr(contact, flag)) != (value == "on"):
        contacts.opt_out(session, contact.id, flag, via="ui", value=value == "on", actor_id=user.id,
                         reason=f"pelo operador {user.name}")
    return RedirectResponse(f"/contacts/{contact.id}#opt-outs", status_code=303)


@router.post("/{contact_id:int}/conversations")
async def start_conversation(contact_id: int, request: Request, session: DbSession, user: PageUser):
    """"Nova conversa": a text or an approved template on the chosen channel; then the inbox, on
    that conversation. A refusal sends nothing and opens no conversation."""
    form = await request.form()
    web_session.check_csrf(request, form.get("csrf_token"))
    contact = contacts.get_contact(session, contact_id)
    channel_raw, mode = str(form.get("channel_id") or ""), str(form.get("mode") or "text")
    body = str(form.get("body") or "")
    sent = {"channel_id": channel_raw, "mode": mode, "body": body, "template_id": str(form.get("template_id") or "")}
    try:
        if not (channel_raw.isdigit() and len(channel_raw) <= 9):
            raise InvalidInput("escolha o canal da conversa", field="channel_id")
        channel_id = int(channel_raw)
        template_id = parameters = None
        if mode == "template":
            template_id, parameters = _template_from(session, channel_id, form)
        elif not body.strip():
            raise InvalidInput("escreva a mensagem", field="body")
        message = workflow.start_conversation(session, user, contact.id, channel_id, body=body,
                                              template_id=template_id, parameters=parameters, via="ui")
    except DomainError as exc:
        session.rollback()
        contact = contacts.get_contact(session, contact_id)
        return _contact_page(request, session, user, contact, send_error=exc, sent=sent, status_code=exc.status_code)
    if message.status == "queued":
        jobs, message_id = request.app.state.runtime.jobs, message.id
        after_commit(session, lambda: jobs.dispatch([message_id]))
    log.info("contact %d: %s started conversation %d", contact.id, user.username, message.conversation_id)
    return RedirectResponse(f"/inbox/{message.conversation_id}", status_code=303)


def _template_from(session, channel_id: int, form) -> tuple[int, dict]:
    """The chosen approved template and its parameters from the form (each field named
    t<template id>.<parameter path>, as the inbox's template fields are)."""
    raw = str(form.get("template_id") or "")
    template = next((t for t in approved_template_fields(session, channel_id) if str(t["id"]) == raw), None)
    if template is None:
        raise InvalidInput("escolha um modelo aprovado deste canal", field="template_id")
    parameters: dict = {}
    for spec in template["fields"]:
        value = str(form.get(f"t{template['id']}.{spec['path']}") or "").strip()
        part = spec["part"]
        if part == "header_media":
            if value:
                parameters["header_media"] = {"type": spec["media"], "link": value}
        elif part == "buttons":
            if value:
                parameters.setdefault("buttons", {})[str(spec["index"])] = value
        elif not value:
            raise InvalidInput("preencha o parâmetro {label} do modelo", field=spec["path"], label=spec["label"])
        elif template["named"]:
            parameters.setdefault(part, {})[spec["path"].rsplit(".", 1)[1]] = value
        else:
            parameters.setdefault(part, []).append(value)
    return template["id"], parameters


# --- CSV import -----------------------------------------------------------------------------------------

@router.get("/import")
def import_page(request: Request, session: DbSession, user: SupervisorPageUser):
    recent = list(session.scalars(select(ContactImport).order_by(ContactImport.id.desc()).limit(20)))
    return render(request, "contact_imports.html", user, recent=recent, error=None,
                  max_size=imports.size_words(request.app.state.settings.contact_import_max_bytes), active_nav="contacts")


@router.post("/import")
async def upload(request: Request, session: DbSession, user: SupervisorPageUser):
    settings = request.app.state.settings
    try:
        # Refused before the body is read when it says it is too large; otherwise counted as kept.
        if int(request.headers.get("content-length") or 0) > settings.contact_import_max_bytes + 65_536:
            raise InvalidInput("o arquivo passa de {limit}, o limite para importar: divida o arquivo em partes "
                               "menores", field="file", limit=imports.size_words(settings.contact_import_max_bytes))
        form = await request.form(max_files=1, max_fields=4)
        web_session.check_csrf(request, form.get("csrf_token"))
        upload_file = form.get("file")
        if not isinstance(upload_file, StarletteUploadFile):
            raise InvalidInput("escolha o arquivo CSV a importar", field="file")
        contact_import = imports.save_upload(session, settings, user_id=user.id, filename=upload_file.filename or "",
                                             stream=upload_file.file)
    except InvalidInput as exc:
        session.rollback()
        recent = list(session.scalars(select(ContactImport).order_by(ContactImport.id.desc()).limit(20)))
        return render(request, "contact_imports.html", user, recent=recent, error=exc, status_code=exc.status_code,
                      max_size=imports.size_words(settings.contact_import_max_bytes), active_nav="contacts")
    return RedirectResponse(f"/contacts/import/{contact_import.id}", status_code=303)


def _import_page(request: Request, session, user: User, contact_import: ContactImport,
                 error: DomainError | None = None, status_code: int = 200):
    settings = request.app.state.settings
    definitions = contact_fields.definitions(session)
    report, rows = imports.preview(settings, contact_import, definitions)
    return render(request, "contact_import.html", user, status_code=status_code, imp=contact_import,
                  report=report, rows=rows, fields=FIELDS, definitions=definitions, error=error,
                  labels={**FIELD_LABELS, **{d.key: d.label for d in definitions}},  # a change names its field
                  reason=lambda rejected: csv_io.rejection_reason(rejected.field, rejected.reason),
                  stalled=imports.stalled(contact_import),
                  has_rejections=imports.rejections_path(settings, contact_import).exists(), active_nav="contacts")


@router.get("/import/{import_id:int}")
def import_detail(import_id: int, request: Request, session: DbSession, user: SupervisorPageUser):
    return _import_page(request, session, user, imports.get_import(session, import_id))


@router.get("/import/{import_id:int}/status")
def import_status(import_id: int, session: DbSession, user: SupervisorPageUser):
    """What the page polls while a run goes on."""
    found = imports.get_import(session, import_id)
    return JSONResponse({"status": found.status, "rows_done": found.rows_done, "rows_total": found.rows_total},
                        headers={"Cache-Control": "no-store"})


@router.post("/import/{import_id:int}/mapping")
async def import_mapping(import_id: int, request: Request, session: DbSession, user: SupervisorPageUser):
    form = await request.form()
    web_session.check_csrf(request, form.get("csrf_token"))
    contact_import = imports.get_import(session, import_id)
    mapping = {key[len("map."):]: str(value) for key, value in form.multi_items() if key.startswith("map.")}
    try:
        imports.set_mapping(session, request.app.state.settings, contact_import, mapping, actor_id=user.id)
    except DomainError as exc:
        session.rollback()
        return _import_page(request, session, user, imports.get_import(session, import_id), exc, exc.status_code)
    return RedirectResponse(f"/contacts/import/{import_id}", status_code=303)


@router.post("/import/{import_id:int}/dry-run")
def import_dry_run(import_id: int, request: Request, session: DbSession, user: SupervisorPageUser,
                   csrf_token: str = Form("")):
    return _start(import_id, "dry-run", request, session, user, csrf_token)


@router.post("/import/{import_id:int}/run")
def import_run(import_id: int, request: Request, session: DbSession, user: SupervisorPageUser,
               csrf_token: str = Form("")):
    return _start(import_id, "run", request, session, user, csrf_token)


def _start(import_id: int, step: str, request: Request, session, user: User, csrf_token: str):
    web_session.check_csrf(request, csrf_token)
    contact_import = imports.get_import(session, import_id)
    try:
        imports.start(session, contact_import, dry_run=step == "dry-run", actor_id=user.id,
                      enqueue=request.app.state.runtime.jobs.run_contact_import)
    except DomainError as exc:
        session.rollback()
        return _import_page(request, session, user, imports.get_import(session, import_id), exc, exc.status_code)
    log.info("contact import %d: %s started by %s", import_id, step, user.username)
    return RedirectResponse(f"/contacts/import/{import_id}", status_code=303)


@router.get("/import/{import_id:int}/rejections.csv")
def import_rejections(import_id: int, request: Request, session: DbSession, user: SupervisorPageUser):
    contact_import = imports.get_import(session, import_id)
    path = imports.rejections_path(request.app.state.settings, contact_import)
    if not path.exists():
        raise InvalidInput("esta importação ainda não tem arquivo de rejeitadas: rode a simulação primeiro",
                           field="import")
    stem = contact_import.filename.rsplit(".", 1)[0]
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"{stem}-rejeitadas.csv")
