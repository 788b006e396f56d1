"""Campaigns over REST: create (returns at once; a job stores the recipients), preview before
anything is stored, start, pause, resume, cancel, progress, recipients (JSON and CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from contact_center.campaigns import service as campaigns
from contact_center.campaigns.content import render_for
from contact_center.campaigns.models import Campaign
from contact_center.campaigns.schemas import CampaignIn, CampaignOut, CampaignPage, PreviewOut
from contact_center.campaigns.windows import parse_window
from contact_center.channels import service as channels
from contact_center.deps import DbSession
from contact_center.messaging.schemas import MessageOut
from contact_center.messaging.status import channel_status
from contact_center.routes import CheckedRoute
from contact_center.templates.service import get_template
from contact_center.translations import say_stored
from contact_center.unit_of_work import after_commit
from contact_center.web.i18n import request_language
from contact_center.web.session import Operator, SupervisorOperator

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"], route_class=CheckedRoute)


def out(session, campaign: Campaign, summary: tuple[dict, dict] | None = None, *, lang: str | None = None) -> CampaignOut:
    """The campaign as the API and the pages show it, its reason to wait and its alert said in `lang`."""
    view = CampaignOut.model_validate(campaign)
    view.waiting_reason = say_stored(campaign.waiting_reason, lang)
    view.error = say_stored(campaign.error, lang)
    view.by_status, view.progress = summary or campaigns.summaries(session, [campaign.id])[campaign.id]
    view.delivery_rate, view.reply_rate = rates(view.progress)
    return view


def rates(progress: dict[str, int]) -> tuple[float | None, float | None]:
    """Delivered (or read) over what reached an outcome at the provider; replied over what was
    sent. None while nothing counts yet, so a page shows "—" rather than 0%."""
    sent = progress.get("sent", 0) + progress.get("delivered", 0) + progress.get("read", 0)
    delivered = progress.get("delivered", 0) + progress.get("read", 0)
    settled = sent + progress.get("failed", 0)
    return (delivered / settled if settled else None, progress.get("replied", 0) / sent if sent else None)


def _body(session, body: CampaignIn) -> str | None:
    return get_template(session, body.template_id).body if body.template_id else body.body


@router.post("", response_model=CampaignOut, status_code=status.HTTP_202_ACCEPTED)
def create(body: CampaignIn, request: Request, session: DbSession, user: SupervisorOperator):
    """Store the campaign and return at once (202, status `building`): its recipients are stored by
    a job in batches (follow `total`), then it waits for a start (or runs, with `start`)."""
    campaign = campaigns.create_campaign(
        session, name=body.name, channel_id=body.channel_id, body=_body(session, body), template_id=body.template_id,
        audience=body.audience, user=user, settings=request.app.state.settings, starts_at=body.starts_at,
        send_window=body.send_window, per_minute=body.per_minute, start=body.start,
        whatsapp_template_id=body.whatsapp_template_id, template_parameters=body.parameters)
    campaign_id = campaign.id
    after_commit(session, lambda: request.app.state.runtime.jobs.build_campaign(campaign_id))
    return out(session, campaign, lang=request_language(request))


@router.post("/preview", response_model=PreviewOut)
def preview(body: CampaignIn, request: Request, session: DbSession, user: SupervisorOperator):
    """What the campaign would send, without storing anything: the first messages rendered, the
    recipients skipped and why, segments and cost against the channel's live balance."""
    settings = request.app.state.settings
    channel = channels.get_channel(session, body.channel_id)
    render = render_for(session, channel, body=_body(session, body), whatsapp_template_id=body.whatsapp_template_id,
                        parameters=body.parameters, user=user, settings=settings)
    audience = campaigns.check_audience(body.audience)
    parse_window(body.send_window)  # a window the create would refuse is refused here, before anything is rendered
    plan = campaigns.plan_bulk(session, campaigns.audience_source(audience)(session), channel=channel, render=render)
    session.commit()  # release the database before asking the provider for the balance
    state = channel_status(channel, settings, request_language(request))
    cost = plan.estimated_cost
    return PreviewOut(
        recipients=plan.recipients, sendable=plan.sendable, skipped=plan.skip_reasons,
        skip_examples=[{"where": r.where, "reason": r.reason, "kind": r.kind} for r in plan.rejected[:100]],
        segments=plan.segments, estimated_cost=cost, balance=state.balance, balance_error=state.error,
        enough_balance=None if cost is None or state.balance is None else state.balance >= cost,
        preview=plan.preview)


@router.get("", response_model=CampaignPage)
def list_campaigns(request: Request, session: DbSession, _: Operator, limit: int = Query(50, ge=1, le=200)):
    found = list(session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit)))
    summary = campaigns.summaries(session, [c.id for c in found])
    lang = request_language(request)
    return CampaignPage(items=[out(session, c, summary[c.id], lang=lang) for c in found])


@router.get("/{campaign_id}", response_model=CampaignOut)
def get(campaign_id: int, request: Request, session: DbSession, _: Operator):
    return out(session, campaigns.get_campaign(session, campaign_id), lang=request_language(request))


def _acting(action):
    def endpoint(campaign_id: int, request: Request, session: DbSession, user: SupervisorOperator):
        campaign = action(session, campaign_id, user)
        if campaign.status == "running":
            after_commit(session, lambda: request.app.state.runtime.jobs.pump_campaign(campaign_id))
        return out(session, campaign, lang=request_language(request))

    endpoint.__doc__ = action.__doc__
    return endpoint


for _name, _action in (("start", campaigns.start), ("pause", campaigns.pause), ("resume", campaigns.resume),
                       ("cancel", campaigns.cancel)):
    router.add_api_route(f"/{{campaign_id}}/{_name}", _acting(_action), methods=["POST"], response_model=CampaignOut,
                         name=f"campaign_{_name}", summary=f"{_name.capitalize()} the campaign (409 when it cannot be)")


@router.get("/{campaign_id}/recipients", response_model=list[MessageOut])
def list_recipients(campaign_id: int, request: Request, session: DbSession, _: SupervisorOperator,
                    status_: str | None = Query(None, alias="status", description="One of " +
                                                ", ".join(campaigns.PROGRESS_STATES)),
                    limit: int = Query(100, ge=1, le=1000), after_id: int | None = None):
    lang = request_language(request)
    return [MessageOut.said(m, lang) for m in
            campaigns.recipients(session, campaign_id, status=status_, limit=limit, after_id=after_id)]


CSV_COLUMNS = ("id", "phone_e164", "status", "status_reason", "attempts", "sent_at", "delivered_at", "read_at",
               "failed_at", "body")


@router.get("/{campaign_id}/recipients.csv")
def export_recipients(campaign_id: int, request: Request, session: DbSession, user: SupervisorOperator,
                      status_: str | None = Query(None, alias="status")):
    """Every recipient with its state and reason, as CSV (read a thousand at a time)."""
    campaign = campaigns.get_campaign(session, campaign_id)
    campaigns.record_export(session, campaign, user)
    session.commit()

    factory = request.app.state.session_factory

    lang = request_language(request)

    def rows() -> Iterator[str]:  # on a session of its own: the request's is gone once this streams
        with factory() as reader:
            yield from _csv(reader, campaign_id, status_, lang)

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="campanha-{campaign_id}.csv"'})


def _csv(session, campaign_id: int, status_: str | None, lang: str | None) -> Iterator[str]:
    """The recipients as CSV, each one's reason said in `lang`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    after = None
    while True:
        page = campaigns.recipients(session, campaign_id, status=status_, limit=1000, after_id=after)
        for message in page:
            values = {c: getattr(message, c) for c in CSV_COLUMNS}
            values["status_reason"] = say_stored(message.status_reason, lang)
            writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(page) < 1000:
            return
        after = page[-1].id
