"""Admin pages: operators, channels, templates and contact fields (admins); quick replies (supervisors and admins).
Plain forms: each posts with its CSRF token and comes back to the page with a notice or the error."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from contact_center.auth import service as auth_service
from contact_center.auth import sessions as auth_sessions
from contact_center.auth.models import Role, User
from contact_center.channels import service as channels
from contact_center.channels import whatsapp_templates
from contact_center.contacts import fields as contact_fields
from contact_center.contacts.models import FIELD_TYPES
from contact_center.deps import DbSession
from contact_center.errors import DomainError, InvalidInput, PermissionDenied
from contact_center.inbox import workflow
from contact_center.messaging import window_reminder
from contact_center.messaging.status import channel_status
from contact_center.providers.registry import PROVIDERS
from contact_center.templates import service as templates
from contact_center.unit_of_work import after_commit
from contact_center.web import session as web_session
from contact_center.web.i18n import page_language
from contact_center.web.rendering import render
from contact_center.web.session import AdminPageUser, PageUser
from contact_center.routes import CheckedRoute

router = APIRouter(prefix="/admin", include_in_schema=False, route_class=CheckedRoute)


def _supervisor_page_user(user: PageUser) -> User:
    if not user.role_enum.includes(Role.supervisor):
        raise PermissionDenied("this page is for supervisors and admins; you are {user_role}", user_role=user.role)
    return user


SupervisorPageUser = Annotated[User, Depends(_supervisor_page_user)]


def _done(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?ok={notice}", status_code=303)


def _page(request: Request, session, user: User, section: str, error: DomainError | None = None, **extra):
    values: dict = {"section": section, "error": error,
                    "notice": request.query_params.get("ok"), **extra}
    if section == "users":
        values["users"] = auth_service.list_users(session)
        values["roles"] = [r.value for r in Role]
        values["session_counts"] = auth_sessions.live_counts(session)
    elif section == "channels":
        base = request.app.state.settings.public_base_url
        values["channels"] = [(c, channels.webhook_urls(c, base)) for c in channels.list_channels(session)]
        values["providers"] = sorted((p for p in PROVIDERS.values() if p.kind != "whatsapp"), key=lambda spec: spec.name)
        values["wa_providers"] = sorted((p for p in PROVIDERS.values() if p.kind == "whatsapp"),
                                        key=lambda spec: spec.name)
    elif section == "templates":
        values["templates"] = templates.list_templates(session)
    elif section == "quick_replies":
        values["quick_replies"] = workflow.list_quick_replies(session)
    elif section == "contact_fields":
        values["contact_fields"] = [(d, contact_fields.count_values(session, d.id))
                                    for d in contact_fields.definitions(session)]
        values["field_types"] = FIELD_TYPES
    return render(request, "admin.html", user, status_code=error.status_code if error else 200, **values)


def _form_action(request: Request, session, user: User, section: str, csrf_token: str, action) -> object:
    """Run a form's change: on a domain error, roll back and show the page with the reason."""
    web_session.check_csrf(request, csrf_token)
    try:
        notice = action()
        session.flush()
    except DomainError as exc:
        session.rollback()
        return _page(request, session, user, section, exc)
    return _done(f"/admin/{section.replace('_', '-')}", notice)


# --- operators -----------------------------------------------------------------------------------

@router.get("")
def admin_home(user: PageUser):
    target = "/admin/users" if user.role_enum.includes(Role.admin) else "/admin/quick-replies"
    return RedirectResponse(target, status_code=303)


@router.get("/users")
def users_page(request: Request, session: DbSession, user: AdminPageUser):
    return _page(request, session, user, "users")


@router.post("/users")
def create_user(request: Request, session: DbSession, user: AdminPageUser, csrf_token: str = Form(""),
                username: str = Form(""), name: str = Form(""), password: str = Form(""), role: str = Form("agent")):
    def change():
        auth_service.create_user(session, username=username, name=name, password=password, role=role)
        return "created"

    return _form_action(request, session, user, "users", csrf_token, change)


@router.post("/users/{user_id:int}")
def update_user(user_id: int, request: Request, session: DbSession, user: AdminPageUser, csrf_token: str = Form(""),
                name: str = Form(""), role: str = Form(""), active: str = Form(""), password: str = Form("")):
    def change():
        target = auth_service.get_user(session, user_id)
        if target.id == user.id and (not active or role != Role.admin.value):
            raise PermissionDenied("you cannot deactivate yourself or take away your own admin role")
        # Changing your own password keeps this session (you just proved it is yours) and ends the others.
        own = web_session.current_session(request, session) if target.id == user.id else None
        auth_service.update_user(session, target, name=name or None, role=role or None, active=bool(active),
                                 password=password or None, actor_id=user.id, via="ui",
                                 keep_session_id=own.id if own else None,
                                 data_dir=request.app.state.settings.data_dir)
        return "saved"

    return _form_action(request, session, user, "users", csrf_token, change)


@router.post("/users/{user_id:int}/sessions/end")
def end_user_sessions(user_id: int, request: Request, session: DbSession, user: AdminPageUser,
                      csrf_token: str = Form("")):
    def change():
        target = auth_service.get_user(session, user_id)
        # On your own row, the button ends your other sessions, not the one you are using.
        own = web_session.current_session(request, session) if target.id == user.id else None
        auth_sessions.end_all(session, target, "ended_by_admin", actor_id=user.id, via="ui",
                              keep_id=own.id if own else None)
        return "sessions_ended"

    return _form_action(request, session, user, "users", csrf_token, change)


# --- channels ------------------------------------------------------------------------------------

@router.get("/channels")
def channels_page(request: Request, session: DbSession, user: AdminPageUser):
    return _page(request, session, user, "channels")


@router.post("/channels")
def create_channel(request: Request, session: DbSession, user: AdminPageUser, csrf_token: str = Form(""),
                   name: str = Form(""), provider: str = Form(""), token: str = Form(""),
                   base_url: str = Form("")):
    def change():
        settings = {"base_url": base_url.strip()} if base_url.strip() else {}
        channels.create_channel(session, name=name, provider=provider, credentials={"token": token},
                                settings=settings, actor_id=user.id, via="ui")
        return "created"

    return _form_action(request, session, user, "channels", csrf_token, change)


@router.post("/channels/{channel_id:int}")
def update_channel(channel_id: int, request: Request, session: DbSession, user: AdminPageUser,
                   csrf_token: str = Form(""), active: str = Form(""), token: str = Form("")):
    def change():
        channel = channels.get_channel(session, channel_id)
        channels.update_channel(session, channel, active=bool(active),
                                credentials={"token": token} if token.strip() else None, actor_id=user.id, via="ui")
        return "saved"

    return _form_action(request, session, user, "channels", csrf_token, change)


# --- WhatsApp channels ----------------------------------------------------------------------------

def _whatsapp_settings(phone_number_id: str, waba_id: str, api_version: str, base_url: str) -> dict:
    found = {"phone_number_id": phone_number_id.strip(), "waba_id": waba_id.strip()}
    if api_version.strip():
        found["api_version"] = api_version.strip()
    if base_url.strip():
        found["base_url"] = base_url.strip()
    return found


def _reminder_settings(on: str, minutes: str, text: str, template: str) -> dict:
    """The reminder fields of the edit form; the template comes as "name|language", empty for none."""
    name, _, language = template.partition("|")
    return {"window_reminder": bool(on), "window_reminder_minutes": minutes.strip() or 60,
            "window_reminder_text": text, "window_reminder_template": name, "window_reminder_language": language}


def _written(**credentials: str) -> dict[str, str]:
    """Write-only fields: one left empty keeps what is stored."""
    return {name: value.strip() for name, value in credentials.items() if value.strip()}


@router.post("/channels/whatsapp")
def create_whatsapp_channel(request: Request, session: DbSession, user: AdminPageUser, csrf_token: str = Form(""),
                            name: str = Form(""), provider: str = Form("whatsapp_cloud"),
                            phone_number_id: str = Form(""), waba_id: str = Form(""), api_version: str = Form(""),
                            base_url: str = Form(""), access_token: str = Form(""), app_secret: str = Form(""),
                            verify_token: str = Form("")):
    def change():
        if provider not in PROVIDERS or PROVIDERS[provider].kind != "whatsapp":
            raise InvalidInput("'{provider}' is not a WhatsApp provider", provider=provider, field="provider")
        channels.create_channel(session, name=name, provider=provider,
                                credentials=_written(access_token=access_token, app_secret=app_secret,
                                                     verify_token=verify_token),
                                settings=_whatsapp_settings(phone_number_id, waba_id, api_version, base_url),
                                actor_id=user.id, via="ui")
        return "created"

    return _form_action(request, session, user, "channels", csrf_token, change)


def _channel_page(request: Request, session, user: User, channel_id: int, error: DomainError | None = None,
                  notice: str | None = None):
    channel = channels.get_channel(session, channel_id)
    app_settings = request.app.state.settings
    urls = channels.webhook_urls(channel, app_settings.public_base_url)
    templates_found = []
    if channel.kind == "whatsapp":
        for template in whatsapp_templates.list_templates(session, channel.id):
            definition = whatsapp_templates.definition(template)
            templates_found.append({"template": template, "sendable": definition.sendable,
                                    "body_text": definition.body_text,
                                    "reminder_ok": window_reminder.fillable_problem(definition) is None})
    session.commit()  # release the database before calling the provider
    state = channel_status(channel, app_settings, page_language(request))
    return render(request, "admin_channel.html", user, status_code=error.status_code if error else 200,
                  section="channels", channel=channel, urls=urls, state=state,
                  verify_token=(channel.credentials or {}).get("verify_token"),
                  wa_templates=templates_found, error=error,
                  notice=notice or request.query_params.get("ok"))


@router.get("/channels/{channel_id:int}")
def channel_page(channel_id: int, request: Request, session: DbSession, user: AdminPageUser):
    return _channel_page(request, session, user, channel_id)


@router.post("/channels/{channel_id:int}/whatsapp")
def update_whatsapp_channel(channel_id: int, request: Request, session: DbSession, user: AdminPageUser,
                            csrf_token: str = Form(""), name: str = Form(""), phone_number_id: str = Form(""),
                            waba_id: str = Form(""), api_version: str = Form(""), base_url: str = Form(""),
                            access_token: str = Form(""), app_secret: str = Form(""), verify_token: str = Form(""),
                            active: str = Form(""), window_reminder: str = Form(""),
                            window_reminder_minutes: str = Form(""), window_reminder_text: str = Form(""),
                            window_reminder_template: str = Form("")):
    web_session.check_csrf(request, csrf_token)
    try:
        channel = channels.get_channel(session, channel_id)
        was_paused = channel.paused_at is not None
        credentials = _written(access_token=access_token, app_secret=app_secret, verify_token=verify_token)
        channels.update_channel(session, channel, name=name or None, active=bool(active),
                                settings={**_whatsapp_settings(phone_number_id, waba_id, api_version, base_url),
                                          **_reminder_settings(window_reminder, window_reminder_minutes,
                                                               window_reminder_text, window_reminder_template)},
                                credentials=credentials or None, actor_id=user.id, via="ui")
        session.flush()
        if was_paused and channel.paused_at is None:
            # Resumed: what waited while it was paused goes out now, as the API does.
            waiting = channels.queued_message_ids(session, channel.id)
            jobs = request.app.state.runtime.jobs
            after_commit(session, lambda: jobs.dispatch(waiting) if waiting else None)
    except DomainError as exc:
        session.rollback()
        return _channel_page(request, session, user, channel_id, exc)
    return RedirectResponse(f"/admin/channels/{channel_id}?ok=saved", status_code=303)


@router.post("/channels/{channel_id:int}/whatsapp-templates/sync")
def sync_whatsapp_templates(channel_id: int, request: Request, session: DbSession, user: AdminPageUser,
                            csrf_token: str = Form("")):
    web_session.check_csrf(request, csrf_token)
    try:
        channel = channels.get_channel(session, channel_id)
        result = whatsapp_templates.sync_templates(session, channel, request.app.state.settings)
        session.flush()
    except DomainError as exc:
        session.rollback()
        return _channel_page(request, session, user, channel_id, exc)
    return RedirectResponse(f"/admin/channels/{channel_id}?ok=synced&added={result.added}&updated={result.updated}"
                            f"&removed={result.removed}", status_code=303)


# --- templates -------------------------------------------------------------------------------------

@router.get("/templates")
def templates_page(request: Request, session: DbSession, user: AdminPageUser):
    return _page(request, session, user, "templates")


@router.post("/templates")
def create_template(request: Request, session: DbSession, user: AdminPageUser, csrf_token: str = Form(""),
                    name: str = Form(""), body: str = Form(""), description: str = Form("")):
    def change():
        templates.create_template(session, name=name, body=body, description=description or None, user=user,
                                  settings=request.app.state.settings, via="ui")
        return "created"

    return _form_action(request, session, user, "templates", csrf_token, change)


@router.post("/templates/{template_id:int}")
def update_template(template_id: int, request: Request, session: DbSession, user: AdminPageUser,
                    csrf_token: str = Form(""), name: str = Form(""), body: str = Form(""),
                    description: str = Form(""), delete: str = Form("")):
    settings = request.app.state.settings

    def change():
        template = templates.get_template(session, template_id)
        if delete:
            templates.delete_template(session, template, user, via="ui")
            return "deleted"
        templates.update_template(session, template, name=name, body=body, description=description, user=user,
                                  settings=settings, via="ui")
        return "saved"

    return _form_action(request, session, user, "templates", csrf_token, change)


# --- quick replies -----------------------------------------------------------------------------------

@router.get("/quick-replies")
def quick_replies_page(request: Request, session: DbSession, user: SupervisorPageUser):
    return _page(request, session, user, "quick_replies")


@router.post("/quick-replies")
def create_quick_reply(request: Request, session: DbSession, user: SupervisorPageUser, csrf_token: str = Form(""),
                       title: str = Form(""), body: str = Form("")):
    def change():
        workflow.save_quick_reply(session, user, title=title, body=body)
        return "created"

    return _form_action(request, session, user, "quick_replies", csrf_token, change)


@router.post("/quick-replies/{quick_reply_id:int}")
def update_quick_reply(quick_reply_id: int, request: Request, session: DbSession, user: SupervisorPageUser,
                       csrf_token: str = Form(""), title: str = Form(""), body: str = Form(""),
                       delete: str = Form("")):
    def change():
        if delete:
            workflow.delete_quick_reply(session, quick_reply_id)
            return "deleted"
        workflow.save_quick_reply(session, user, title=title, body=body, quick_reply_id=quick_reply_id)
        return "saved"

    return _form_action(request, session, user, "quick_replies", csrf_token, change)


# --- contact fields ----------------------------------------------------------------------------------

def _choices(text: str) -> list[str]:
    """One option a line (or separated by commas)."""
    return [c.strip() for c in text.replace(",", "\n").splitlines() if c.strip()]


@router.get("/contact-fields")
def contact_fields_page(request: Request, session: DbSession, user: AdminPageUser):
    return _page(request, session, user, "contact_fields")


@router.post("/contact-fields")
def create_contact_field(request: Request, session: DbSession, user: AdminPageUser, csrf_token: str = Form(""),
                         key: str = Form(""), label: str = Form(""), type: str = Form("text"),
                         choices: str = Form("")):
    def change():
        contact_fields.add_field(session, key=key, label=label, type=type,
                                 choices=_choices(choices) if type == "choice" else None, actor_id=user.id, via="ui")
        return "created"

    return _form_action(request, session, user, "contact_fields", csrf_token, change)


@router.post("/contact-fields/{key}")
def update_contact_field(key: str, request: Request, session: DbSession, user: AdminPageUser,
                         csrf_token: str = Form(""), label: str = Form(""), choices: str = Form(""),
                         position: str = Form("")):
    def change():
        field = contact_fields.get_field(session, key)
        try:
            order = int(position) if position.strip() else None
        except ValueError:
            raise InvalidInput("position: '{position}' não é um número inteiro",
                               position=position, field="position") from None
        contact_fields.update_field(session, key, label=label,
                                    choices=_choices(choices) if field.type == "choice" else None, position=order,
                                    actor_id=user.id, via="ui")
        return "saved"

    return _form_action(request, session, user, "contact_fields", csrf_token, change)


@router.post("/contact-fields/{key}/remove")
def remove_contact_field(key: str, request: Request, session: DbSession, user: AdminPageUser,
                         csrf_token: str = Form(""), confirm: str = Form("")):
    """Removing a field some contacts hold a value of asks first, saying how many."""
    web_session.check_csrf(request, csrf_token)
    try:
        field = contact_fields.get_field(session, key)
        held = contact_fields.count_values(session, field.id)
        if held and not confirm:
            return _page(request, session, user, "contact_fields", confirm_remove={"key": key, "label": field.label,
                                                                                   "count": held})
        contact_fields.remove_field(session, key, confirm=True, actor_id=user.id, via="ui")
        session.flush()
    except DomainError as exc:
        session.rollback()
        return _page(request, session, user, "contact_fields", exc)
    return _done("/admin/contact-fields", "deleted")
