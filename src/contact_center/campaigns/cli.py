"""`contact-center campaigns …`: create, list, follow, start, pause, resume, cancel."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from contact_center.campaigns import service as campaigns
from contact_center.campaigns.models import Campaign
from contact_center.channels import service as channels
from contact_center.clitools import command_session, console, language
from contact_center.db import transaction
from contact_center.settings import get_settings
from contact_center.translations import say_stored

campaigns_app = typer.Typer(help="Campaigns: bulk sends with a schedule, a send window and a throughput cap.",
                            no_args_is_help=True)
FINAL = ("completed", "cancelled", "failed")


@campaigns_app.command("create")
def create(
    name: str = typer.Argument(..., help="The campaign's name."),
    body: str = typer.Option(None, help="Template text (Jinja2), e.g. 'Oi {{ contact.first_name }}'."),
    template: str = typer.Option(None, help="A saved template's name (instead of --body)."),
    csv: Path = typer.Option(None, exists=True, dir_okay=False, help="CSV of phone[,name] recipients."),
    search: str = typer.Option(None, help="Contacts matching this; '' for every contact."),
    tag: str = typer.Option(None, help="Every contact with this tag."),
    channel: str = typer.Option(None, help="Channel name; the first SMS channel by default."),
    starts_at: datetime = typer.Option(None, help="When it may begin, Brasília time unless given: 2026-12-02T08:00."),
    window: str = typer.Option(None, help='Send window as JSON, e.g. \'{"days": {"mon": {"start": "09:00", '
                                          '"end": "18:00"}}, "blocked_dates": ["2026-12-25"]}\'; default '
                                          'Mon–Fri 08:00–20:00, Sat 08:00–14:00.'),
    per_minute: int = typer.Option(None, help="Throughput cap: messages a minute at most."),
    start: bool = typer.Option(False, "--start", help="Run as soon as its recipients are stored."),
):
    """Create a campaign; its recipients are stored by `serve` or a `worker` (follow with `show`)."""
    from zoneinfo import ZoneInfo

    from contact_center.runtime import build_runtime
    from contact_center.templates.service import get_template_by_name

    if (template is None) == (body is None):
        raise typer.BadParameter("give exactly one of --template and --body")
    if sum(option is not None for option in (csv, search, tag)) != 1:
        raise typer.BadParameter("give exactly one of --csv, --search and --tag")
    try:
        send_window = json.loads(window) if window else None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--window is not JSON: {exc}") from None
    if starts_at is not None and starts_at.tzinfo is None:
        starts_at = starts_at.replace(tzinfo=ZoneInfo("America/Sao_Paulo"))
    settings = get_settings()
    runtime = build_runtime(settings)
    with transaction(runtime.session_factory) as session:
        chosen = channels.get_channel_by_name(session, channel) if channel else channels.default_channel(session, "sms")
        saved = get_template_by_name(session, template) if template else None
        audience = ({"csv": csv.read_text(encoding="utf-8-sig")} if csv else {"tag": tag} if tag is not None
                    else {"search": search})
        campaign = campaigns.create_campaign(
            session, name=name, channel_id=chosen.id, body=saved.body if saved else body,
            template_id=saved.id if saved else None, audience=audience, user=None, settings=settings,
            starts_at=starts_at, send_window=send_window, per_minute=per_minute, start=start, via="cli")
        campaign_id = campaign.id
    runtime.jobs.build_campaign(campaign_id)
    console.print(f"Campaign {campaign_id} created; its recipients are being stored. "
                  f"Follow it with `contact-center campaigns show {campaign_id}`.")


@campaigns_app.command("list")
def list_campaigns(limit: int = typer.Option(30, help="How many, newest first.")):
    """The campaigns with their state and progress."""
    table = Table("id", "name", "state", "messages", "sent", "delivered", "failed", "waiting")
    with command_session() as session:
        found = list(session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit)))
        summary = campaigns.summaries(session, [campaign.id for campaign in found])
        for campaign in found:
            counts = summary[campaign.id][1]
            table.add_row(str(campaign.id), campaign.name, str(campaigns.STATUS_PT[campaign.status]),
                          str(campaign.total),
                          str(counts["sent"] + counts["delivered"] + counts["read"]),
                          str(counts["delivered"] + counts["read"]), str(counts["failed"]),
                          say_stored(campaign.waiting_reason, language()) or "")
    console.print(table)


@campaigns_app.command("show")
def show(campaign_id: int, follow: bool = typer.Option(True, help="Follow it live until it ends (Ctrl-C stops).")):
    """A campaign's progress: a live bar of messages handed to the provider, and counts by state."""
    from contact_center.runtime import open_database

    _, factory = open_database(get_settings())
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("", total=None)
        while True:
            with factory() as session:
                campaign = campaigns.get_campaign(session, campaign_id)
                counts = campaigns.progress(session, campaign_id)
                status, waiting, total = campaign.status, say_stored(campaign.waiting_reason, language()), campaign.total
            handed = counts["sent"] + counts["delivered"] + counts["read"] + counts["failed"]  # out of our hands
            total -= counts["blocked"] + counts["cancelled"]  # never to go
            summary = " ".join(f"{state}:{count}" for state, count in counts.items() if count)
            progress.update(task, total=total or None, completed=handed,
                            description=f"{campaigns.STATUS_PT[status]}{f' ({waiting})' if waiting else ''} {summary}")
            if not follow or status in FINAL or status == "ready":
                break
            time.sleep(1)


def _action(action, verb: str):
    def command(campaign_id: int):
        from contact_center.runtime import build_runtime

        runtime = build_runtime(get_settings())
        with transaction(runtime.session_factory) as session:
            campaign = action(session, campaign_id, None, via="cli")
            status, cancelled = campaign.status, campaign.cancelled
        if status == "running":
            runtime.jobs.pump_campaign(campaign_id)
        extra = f"; {cancelled} message(s) not sent" if action is campaigns.cancel else ""
        console.print(f"Campaign {campaign_id} {verb}{extra}.")

    command.__doc__ = f"{verb.capitalize()} a campaign."
    return command


for _name, _action_fn, _verb in (("start", campaigns.start, "started"), ("pause", campaigns.pause, "paused"),
                                 ("resume", campaigns.resume, "resumed"), ("cancel", campaigns.cancel, "cancelled")):
    campaigns_app.command(_name)(_action(_action_fn, _verb))
