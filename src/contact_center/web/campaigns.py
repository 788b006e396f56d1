"""The campaign pages: the list, a new campaign (supervisors and admins), and a campaign's page with
its live progress and recipients. Like the inbox, these routes only read: creating, previewing,
starting, pausing, resuming and cancelling go through the campaigns API (campaigns/api.py) with
the session cookie and its CSRF token, called by the page script."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from contact_center.auth.models import Role, User
from contact_center.campaigns import api as campaigns_api
from contact_center.campaigns import service as campaigns
from contact_center.campaigns.models import Campaign
from contact_center.campaigns.windows import DAYS, SendWindow
from contact_center.channels import service as channels
from contact_center.contacts.models import Contact
from contact_center.deps import DbSession
from contact_center.errors import InvalidInput
from contact_center.templates.service import list_templates
from contact_center.web.admin import SupervisorPageUser
from contact_center.web.i18n import page_language, translator
from contact_center.web.rendering import fragment, render
from contact_center.web.session import PageUser, SupervisorOperator
from contact_center.routes import CheckedRoute

router = APIRouter(prefix="/campaigns", include_in_schema=False, route_class=CheckedRoute)

FINAL = ("completed", "cancelled", "failed")
# Bar segments, in the order they are drawn: what got furthest first.
BAR_STATES = ("read", "delivered", "sent", "queued", "scheduled", "failed", "blocked", "cancelled")
RECIPIENTS_PAGE = 50
# Which action each state allows (campaigns.service decides; this only hides what would be refused).
ACTIONS = {"start": ("ready", "building"), "pause": ("running",), "resume": ("paused",),
           "cancel": ("building", "ready", "running", "paused")}
TEMPLATE_VARIABLES = ("contact.first_name", "contact.name", "contact.mobile", "contact.phone", "contact.email",
                      "contact.document", "user.name", "company.name", "company.phone")


def _staff(user: User) -> bool:
    return user.role_enum.includes(Role.supervisor)


def bar(progress: dict[str, int]) -> list[dict]:
    """The stacked bar's segments as percentages of every message counted (x, width)."""
    total = sum(progress.get(state, 0) for state in BAR_STATES)
    segments, x = [], 0.0
    for state in BAR_STATES:
        width = 100.0 * progress.get(state, 0) / total if total else 0.0
        segments.append({"state": state, "x": round(x, 3), "width": round(width, 3)})
        x += width
    return segments


def sent_share(view) -> float:
    """How much of the campaign reached the provider: the list's progress bar."""
    done = sum(view.progress.get(state, 0) for state in ("sent", "delivered", "read"))
    return done / view.total if view.total else 0.0


def window_words(window: SendWindow, t) -> str:
    """"segunda a sexta 08:00–20:00; sábado 08:00–14:00": days with the same hours in a row are one run."""
    runs: list[list] = []  # [first day, last day, hours]
    for day in DAYS:
        hours = window.days.get(day)
        span = f"{hours.start}–{hours.end}" if hours else None
        if runs and runs[-1][2] == span and DAYS.index(runs[-1][1]) == DAYS.index(day) - 1:
            runs[-1][1] = day
        else:
            runs.append([day, day, span])
    parts = []
    for first, last, span in runs:
        if span is None:
            continue
        days = t(f"day.{first}") if first == last else t("js.day_range", first=t(f"day.{first}"), last=t(f"day.{last}"))
        parts.append(f"{days} {span}")
    return "; ".join(parts) if parts else t("js.window_never")


def _t(request: Request):
    return translator(page_language(request))


@router.get("")
def list_page(request: Request, session: DbSession, user: PageUser):
    found = list(session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(100)))
    names = {c.id: c for c in channels.list_channels(session)}
    lang = page_language(request)
    rows = [{"view": (view := campaigns_api.out(session, c, lang=lang)), "channel": names.get(c.channel_id),
             "share": sent_share(view)} for c in found]
    return render(request, "campaigns.html", user, rows=rows, staff=_staff(user), active_nav="campaigns")


@router.get("/new")
def new_page(request: Request, session: DbSession, user: SupervisorPageUser):
    channel_list = [c for c in channels.list_channels(session) if c.active]
    window = SendWindow()
    return render(request, "campaign_new.html", user, channels=channel_list, templates=list_templates(session),
                  variables=TEMPLATE_VARIABLES, days=DAYS, window=window,
                  window_text=window_words(window, _t(request)), active_nav="campaigns")


@router.get("/{campaign_id:int}")
def campaign_page(campaign_id: int, request: Request, session: DbSession, user: PageUser):
    campaign = campaigns.get_campaign(session, campaign_id)
    view = campaigns_api.out(session, campaign, lang=page_language(request))
    window = SendWindow.model_validate(campaign.send_window or {})
    return render(request, "campaign.html", user, campaign=view, channel=channels.get_channel(session,
                  campaign.channel_id), bar=bar(view.progress), bar_states=BAR_STATES, staff=_staff(user),
                  actions=ACTIONS, final=FINAL, window=window, window_text=window_words(window, _t(request)),
                  progress_states=campaigns.PROGRESS_STATES,
                  page_size=RECIPIENTS_PAGE, active_nav="campaigns")


@router.get("/{campaign_id:int}/fragments/recipients")
def recipients_fragment(campaign_id: int, request: Request, session: DbSession, user: SupervisorOperator,
                        status: str = Query(""), after_id: int | None = Query(None)):
    if status and status not in campaigns.PROGRESS_STATES:
        raise InvalidInput("status must be one of {states}", field="status",
                           states=", ".join(campaigns.PROGRESS_STATES))
    found = campaigns.recipients(session, campaign_id, status=status or None, limit=RECIPIENTS_PAGE,
                                 after_id=after_id)
    ids = {m.contact_id for m in found if m.contact_id}
    names = dict(session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(ids))).all()) if ids else {}
    return fragment(request, "fragments/campaign_recipients.html", user, recipients=found, names=names)
