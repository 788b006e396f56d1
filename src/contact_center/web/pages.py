"""The operator UI: login, the inbox and a conversation, and the HTML fragments the page script
fetches to update itself live. Changes go through the inbox API (inbox/api.py) with the session
cookie and the CSRF token; these routes only read (besides logging in and out)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from contact_center.auth import login as auth_login
from contact_center.auth import sessions as auth_sessions
from contact_center.auth.models import User
from contact_center.channels import service as channels
from contact_center.channels import whatsapp_templates
from contact_center.channels.models import Channel
from contact_center.contacts import service as contacts
from contact_center.deps import DbSession
from contact_center.errors import InvalidInput, NotAuthenticated, TooManyAttempts
from contact_center.inbox import queries, visibility, workflow
from contact_center.inbox.models import Conversation
from contact_center.messaging.status import channel_status
from contact_center.templates.service import list_templates
from contact_center.web import session as web_session
from contact_center.web import timeline_view
from contact_center.web.i18n import LANGUAGES, page_language, translator
from contact_center.web.rendering import fragment, pretty_phone, render
from contact_center.web.session import Operator, PageUser
from contact_center.routes import CheckedRoute
from contact_center.contacts import fields as contact_fields

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)


def _safe_next(target: str | None) -> str:
    """Only paths on this site: never an open redirect to somewhere else."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/inbox"
    return target


@router.get("/")
def home(user: PageUser):
    return RedirectResponse("/inbox", status_code=303)


@router.get("/login")
def login_page(request: Request, session: DbSession, next: str | None = None):
    if web_session.user_from_cookie(request, session) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", next=_safe_next(next), error=None,
                  notice=request.query_params.get("bye") and "logout.done")


@router.post("/login")
def login(request: Request, session: DbSession, username: str = Form(""), password: str = Form(""),
          csrf_token: str = Form(""), next: str = Form("/inbox")):
    web_session.check_csrf(request, csrf_token)
    # Refusals are answered, not raised: the request's transaction must commit the failure recorded.
    try:
        _, token = auth_login.password_login(session, username=username, password=password,
                                             client_address=web_session.client_address(request),
                                             user_agent=request.headers.get("user-agent", ""))
    except TooManyAttempts as exc:
        key = "login.throttled_one" if exc.retry_after == 1 else "login.throttled"
        response = render(request, "login.html", next=_safe_next(next), error=key,
                          error_values={"seconds": exc.retry_after}, username=username, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except NotAuthenticated:
        return render(request, "login.html", next=_safe_next(next), error="login.failed", username=username,
                      status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    web_session.log_in(request, response, token)
    return response


@router.post("/logout")
def logout(request: Request, session: DbSession, csrf_token: str = Form("")):
    web_session.check_csrf(request, csrf_token)
    record = web_session.current_session(request, session)
    if record is not None:  # ended on the server: a copy of the cookie is worthless from now on
        auth_sessions.end(session, record, "logout", actor_id=record.user_id, via="ui")
    response = RedirectResponse("/login?bye=1", status_code=303)
    web_session.log_out(response)
    return response


@router.get("/lang/{code}")
def choose_language(code: str, next: str | None = None):
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(web_session.LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


# --- the inbox ---------------------------------------------------------------------------------------

def _filter_from(request: Request) -> tuple[queries.InboxFilter, dict[str, str]]:
    params = request.query_params
    channel = params.get("channel") or ""
    raw = {"view": params.get("view") or "all", "status": params.get("status") or "open", "channel": channel,
           "q": (params.get("q") or "").strip()}
    if channel and not (channel.isdigit() and len(channel) <= 18):
        raise InvalidInput("channel must be a channel id, not '{value}'", field="channel", value=channel[:30])
    filter_ = queries.InboxFilter(view=raw["view"], status=raw["status"], channel_id=int(channel) if channel else None,
                                  search=raw["q"])
    return filter_, {k: v for k, v in raw.items() if v and (k, v) not in (("view", "all"), ("status", "open"))}


def _inbox_context(request: Request, session, user: User, conversation: Conversation | None) -> dict:
    filter_, params = _filter_from(request)
    page = queries.list_conversations(session, user, filter_, before=request.query_params.get("before"))
    runtime = request.app.state.runtime
    channel_list = channels.list_channels(session)
    return {
        "page": page, "filter": filter_, "params": params, "query": urlencode(params),
        "empty_reason": _empty_reason(session, user, page, params),
        "channels": channel_list, "unread": queries.unread_total(session, user),
        "since": f"{runtime.events.epoch}:{runtime.events.position()}",
        "open_id": conversation.id if conversation else None,
    }


def _empty_reason(session, user: User, page, params: dict) -> str | None:
    """Why the list is empty, so the page can say what to do next: nothing at all yet, nothing open
    (the default filter), or nothing matching the filters chosen."""
    if page.total:
        return None
    if params:
        return "filtered"
    everything = queries.InboxFilter(view="all", status="any")
    return "no_open" if queries.count_conversations(session, user, everything) else "none_yet"


@router.get("/inbox")
def inbox(request: Request, session: DbSession, user: PageUser):
    return render(request, "inbox.html", user, **_inbox_context(request, session, user, None), conversation=None)


@router.get("/inbox/{conversation_id:int}")
def conversation_page(conversation_id: int, request: Request, session: DbSession, user: PageUser):
    conversation = workflow.get_conversation(session, conversation_id, user)
    values = _inbox_context(request, session, user, conversation)
    values.update(_conversation_context(session, user, conversation))
    return render(request, "inbox.html", user, **values)


def _header_context(session, user: User, conversation: Conversation) -> dict:
    row = queries.conversation_row(session, user, conversation.id)
    operators = list(session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)))
    return {"conversation": row, "operators": operators, "perm": _permissions(user, row)}


def _timeline_values(session, timeline: queries.Timeline) -> dict:
    entries = timeline_view.fold(timeline)
    messages = [e.message for e in entries if e.kind == "message"]
    return {"timeline": timeline, "scope": timeline.scope, "entries": entries,
            "extras": timeline_view.extras_for(session, messages, timeline.scope)}


def approved_template_fields(session, channel_id: int) -> list[dict]:
    """The channel's sendable WhatsApp templates with the fields each one asks for, in the names
    and paths the template endpoint uses (and names back in a 422)."""
    found = []
    for template in whatsapp_templates.list_templates(session, channel_id):
        definition = whatsapp_templates.definition(template)
        if not definition.sendable:
            continue

        def path(part: str, position: int, name: str) -> str:
            return f"parameters.{part}.{name}" if definition.is_named else f"parameters.{part}[{position}]"

        fields = [{"path": path("header", i, name), "label": "{{" + name + "}}", "part": "header"}
                  for i, name in enumerate(definition.header_parameters)]
        fields += [{"path": path("body", i, name), "label": "{{" + name + "}}", "part": "body"}
                   for i, name in enumerate(definition.body_parameters)]
        if definition.header_media_type:
            fields.insert(0, {"path": "parameters.header_media", "label": definition.header_media_type,
                              "part": "header_media", "media": definition.header_media_type})
        fields += [{"path": f"parameters.buttons[{b.index}]", "label": b.text, "part": "buttons",
                    "index": b.index, "required": b.parameter_required}
                   for b in definition.buttons if b.parameter]
        found.append({"id": template.id, "name": definition.name, "language": definition.language,
                      "category": definition.category, "body_text": definition.body_text,
                      "named": definition.is_named, "fields": fields})
    return found


def _conversation_context(session, user: User, conversation: Conversation) -> dict:
    contact = contacts.get_contact(session, conversation.contact_id) if conversation.contact_id else None
    timeline = queries.timeline(session, conversation, user)
    header = _header_context(session, user, conversation)
    on_whatsapp = header["conversation"].channel_kind == "whatsapp"
    return {
        **header, **_timeline_values(session, timeline),
        "contact": contact, "contact_fields": contact_fields.definitions(session) if contact else [],
        "send_channels": [c for c in channels.list_channels(session) if c.active],
        "templates": list_templates(session), "quick_replies": workflow.list_quick_replies(session),
        "wa_templates": approved_template_fields(session, conversation.channel_id) if on_whatsapp else [],
    }


def _permissions(user: User, row: queries.ConversationRow) -> dict[str, bool]:
    staff = visibility.is_staff(user)
    mine = row.assignee_id == user.id
    handler = staff or mine
    return {
        "take": row.status == "new",
        "release": row.status == "assigned" and handler,
        "close": row.status == "new" or (row.status == "assigned" and handler),
        "reopen": row.status == "done",
        "transfer": (row.status == "assigned" and handler) or (row.status == "new" and staff),
        "write": not (row.status == "assigned" and not handler),
    }


# --- fragments for live updates (fetched by the page script) ---------------------------------------------

@router.get("/inbox/fragments/list")
def list_fragment(request: Request, session: DbSession, user: Operator):
    filter_, params = _filter_from(request)
    page = queries.list_conversations(session, user, filter_, before=request.query_params.get("before"))
    return fragment(request, "fragments/list.html", user, page=page, query=urlencode(params),
                    open_id=_int(request.query_params.get("open")))


@router.get("/inbox/fragments/row/{conversation_id:int}")
def row_fragment(conversation_id: int, request: Request, session: DbSession, user: Operator):
    filter_, params = _filter_from(request)
    row = queries.conversation_row(session, user, conversation_id, filter_)
    if row is None:
        return Response(status_code=204)  # not (or no longer) in this list for this operator
    return fragment(request, "fragments/row.html", user, row=row, query=urlencode(params),
                    open_id=_int(request.query_params.get("open")))


@router.get("/inbox/{conversation_id:int}/fragments/header")
def header_fragment(conversation_id: int, request: Request, session: DbSession, user: Operator):
    conversation = workflow.get_conversation(session, conversation_id, user)
    # Refetched on every change to the conversation: only what the header shows.
    return fragment(request, "fragments/header.html", user, **_header_context(session, user, conversation))


@router.get("/inbox/{conversation_id:int}/fragments/timeline")
def timeline_fragment(conversation_id: int, request: Request, session: DbSession, user: Operator,
                      before: int | None = Query(None)):
    conversation = workflow.get_conversation(session, conversation_id, user)
    found = queries.timeline(session, conversation, user, before_id=before)
    return fragment(request, "fragments/timeline.html", user, **_timeline_values(session, found),
                    conversation_id=conversation.id, older_only=before is not None)


@router.get("/inbox/{conversation_id:int}/fragments/message/{message_id:int}")
def message_fragment(conversation_id: int, message_id: int, request: Request, session: DbSession, user: Operator):
    conversation = workflow.get_conversation(session, conversation_id, user)
    entry = queries.message_entry(session, conversation, message_id, user)
    target = timeline_view.target_of(entry) if entry is not None else None
    if target is not None:
        # A reaction, edit or deletion shows on the message it points at: redraw that one.
        entry = queries.message_entry(session, conversation, target, user) or entry
    if entry is None:
        return Response(status_code=204)
    scope = queries.scope_of(session, conversation, user)
    return fragment(request, "fragments/entry.html", user, entry=entry,
                    extras=timeline_view.extras_for(session, [entry.message], scope))


@router.get("/inbox/{conversation_id:int}/fragments/event/{event_id:int}")
def event_fragment(conversation_id: int, event_id: int, request: Request, session: DbSession, user: Operator):
    conversation = workflow.get_conversation(session, conversation_id, user)
    entry = queries.event_entry(session, conversation, event_id, user)
    if entry is None:
        return Response(status_code=204)
    return fragment(request, "fragments/entry.html", user, entry=entry)


@router.get("/inbox/{conversation_id:int}/fragments/contact")
def contact_fragment(conversation_id: int, request: Request, session: DbSession, user: Operator):
    conversation = workflow.get_conversation(session, conversation_id, user)
    contact = contacts.get_contact(session, conversation.contact_id) if conversation.contact_id else None
    return fragment(request, "fragments/contact.html", user, contact=contact,
                    contact_fields=contact_fields.definitions(session) if contact else [],
                    conversation=queries.conversation_row(session, user, conversation.id))


@router.get("/inbox/counts")
def counts(request: Request, session: DbSession, user: Operator):
    """The unread badge, and how many conversations the list with these filters has."""
    filter_, _ = _filter_from(request)
    return {"unread": queries.unread_total(session, user), "total": queries.count_conversations(session, user, filter_)}


@router.get("/inbox/contact-search")
def contact_search(session: DbSession, _: Operator, q: str = Query("", max_length=100)):
    if not q.strip():
        return []
    found, _total = contacts.list_contacts(session, search=q, limit=10)
    return [{"id": c.id, "name": c.name, "phone": pretty_phone(c.mobile_e164 or c.phone_e164)} for c in found]


@router.get("/inbox/channel-status")
def channel_status_check(request: Request, session: DbSession, user: Operator):
    """Each active channel's reachability and balance, worded for a notification."""
    t = translator(page_language(request))
    settings = request.app.state.settings
    active = list(session.scalars(select(Channel).where(Channel.active.is_(True)).order_by(Channel.id)))
    session.commit()  # release the database before calling providers
    report = []
    for channel in active:
        state = channel_status(channel, settings, page_language(request))
        if state.ok and state.balance_text:
            text = t("channel.ok", channel=channel.name, balance=state.balance_text)
        elif state.ok:
            text = t("channel.ok_no_balance", channel=channel.name)
        else:
            text = t("channel.error", channel=channel.name, error=state.error)
        report.append({"channel_id": channel.id, "name": channel.name, "ok": state.ok,
                       "balance": state.balance_text, "text": text})
    return JSONResponse(report, headers={"Cache-Control": "no-store"})


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 18 else None
