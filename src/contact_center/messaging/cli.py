"""Operations commands that replace the seed's SQL and its "Check Status" button."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import case, func, select

from contact_center.campaigns import service as campaigns
from contact_center.campaigns.content import render_for
from contact_center.campaigns.windows import ALWAYS
from contact_center.channels import service as channels
from contact_center.clitools import command_session, console, err_console, language
from contact_center.translations import say_stored
from contact_center.contacts.models import Contact
from contact_center.db import transaction
from contact_center.messaging import service
from contact_center.messaging.models import FINAL_FAILURES, Message
from contact_center.messaging.status import channel_status
from contact_center.money import format_brl
from contact_center.settings import get_settings

sms_app = typer.Typer(help="Send SMS and look after them.", no_args_is_help=True)
NEVER_SENT = ("blocked", "cancelled")  # stored, never handed to the provider
NOT_DELIVERED = tuple(s for s in FINAL_FAILURES if s != "blocked")  # the provider could not deliver them


def _channel(session, name: str | None):
    return channels.get_channel_by_name(session, name) if name else channels.default_channel(session, "sms")


@sms_app.command("balance")
def balance(channel: str = typer.Option(None, help="Channel name; the first SMS channel by default.")):
    """Reach the provider and show the balance (the seed's "Check Status")."""
    with command_session() as session:
        chosen = _channel(session, channel)
    # Outside the transaction: don't hold the database meanwhile.
    state = channel_status(chosen, get_settings(), language())
    label = f"{chosen.name}{' (SANDBOX)' if chosen.is_sandbox else ''}"
    if not state.ok:
        err_console.print(f"[red]{label}: cannot reach the provider:[/] {state.error}", highlight=False)
        raise typer.Exit(1)
    console.print(f"{label}: connected, balance [bold]{state.balance_text}[/]", highlight=False)


@sms_app.command("send")
def send(
    to: str = typer.Argument(..., help="Phone, any written form."),
    body: str = typer.Argument(..., help="The text."),
    channel: str = typer.Option(None, help="Channel name."),
    wait: bool = typer.Option(True, help="Wait and show the delivery state (needs a running worker or serve)."),
):
    """Queue one SMS; a running `serve` or `worker` sends it."""
    from contact_center.runtime import build_runtime

    runtime = build_runtime(get_settings())
    with transaction(runtime.session_factory) as session:
        message = service.queue_outbound(session, channel=_channel(session, channel), phone=to, body=body,
                                         origin="cli", via="cli")
        message_id, status = message.id, message.status
    if status == "queued":
        runtime.jobs.dispatch([message_id])
    console.print(f"Message {message_id} {status} ({message.segments} segment(s), {message.encoding}).")
    if wait and status == "queued":
        _follow(runtime.session_factory, [message_id], timeout=60)


def _follow(session_factory, ids: list[int], timeout: float) -> None:
    """Show states until every message is final (or delivered), or the timeout passes."""
    deadline = time.monotonic() + timeout
    final = set(FINAL_FAILURES) | {"delivered", "read", "played"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("sending", total=len(ids))
        while True:
            with session_factory() as session:
                counts = dict(session.execute(select(Message.status, func.count()).where(Message.id.in_(ids))
                                              .group_by(Message.status)).all())
            done = sum(n for s, n in counts.items() if s in final)
            progress.update(task, completed=done, description=" ".join(f"{s}:{n}" for s, n in sorted(counts.items())))
            if done >= len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    if done < len(ids):
        console.print("Still in flight; check later with `contact-center sms report`.")


@sms_app.command("bulk")
def bulk(
    template: str = typer.Option(None, help="Template name (or use --body)."),
    body: str = typer.Option(None, help="Template text (Jinja2)."),
    csv: Path = typer.Option(None, exists=True, dir_okay=False, help="CSV of phone[,name] recipients."),
    search: str = typer.Option(None, help="Contacts matching this; '' for every contact."),
    tag: str = typer.Option(None, help="Every contact with this tag."),
    channel: str = typer.Option(None, help="Channel name."),
    name: str = typer.Option("Bulk send", help="Campaign name."),
    yes: bool = typer.Option(False, "--yes", help="Send without asking after the preview."),
    wait: bool = typer.Option(True, help="Follow the messages to their final states."),
):
    """Preview, estimate and send a templated SMS to many recipients."""
    from contact_center.runtime import build_runtime
    from contact_center.templates.service import get_template_by_name

    if (template is None) == (body is None):
        raise typer.BadParameter("give exactly one of --template and --body")
    if sum(option is not None for option in (csv, search, tag)) != 1:
        raise typer.BadParameter("give exactly one of --csv, --search and --tag")
    settings = get_settings()
    runtime = build_runtime(settings)
    with transaction(runtime.session_factory) as session:
        chosen = _channel(session, channel)
        chosen_template = get_template_by_name(session, template) if template else None
        text = chosen_template.body if chosen_template else body
        audience = ({"csv": csv.read_text(encoding="utf-8-sig")} if csv else {"tag": tag} if tag is not None
                    else {"search": search})
        render = render_for(session, chosen, body=text, whatsapp_template_id=None, parameters=None, user=None,
                            settings=settings)
        plan = campaigns.plan_bulk(session, campaigns.audience_source(audience)(session), channel=chosen, render=render)
        channel_id, template_id = chosen.id, chosen_template.id if chosen_template else None
    state = channel_status(chosen, settings, language())  # outside the transaction: don't hold the database meanwhile
    _show_plan(plan, state)
    if plan.sendable == 0:
        raise typer.Exit(1)
    if not yes and not typer.confirm(f"Send {plan.sendable} SMS?"):
        raise typer.Exit(1)
    with transaction(runtime.session_factory) as session:  # sent now, at any hour: a bulk send by hand
        campaign_id = campaigns.create_campaign(
            session, name=name, channel_id=channel_id, body=text, template_id=template_id, audience=audience,
            user=None, settings=settings, send_window=ALWAYS, start=True, via="cli").id
    with Progress(TextColumn("storing"), BarColumn(), MofNCompleteColumn(), console=console) as progress:
        task = progress.add_task("store", total=plan.sendable + plan.opted_out)
        campaigns.build(runtime.session_factory, settings, campaign_id, progress=lambda n: progress.advance(task, n))
    runtime.jobs.pump_campaign(campaign_id)  # released by `serve` or a `worker`
    console.print(f"Campaign {campaign_id} stored; sending.")
    if wait:
        with runtime.session_factory() as session:
            ids = list(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id,
                                                                Message.status != "blocked")))
        _follow(runtime.session_factory, ids, timeout=max(120, len(ids) / 100))


def _show_plan(plan, state) -> None:
    table = Table("recipients", "to send", "opted out", "rejected", "segments", "estimated cost", "balance")
    table.add_row(str(plan.recipients), str(plan.sendable), str(plan.opted_out), str(len(plan.rejected)),
                  str(plan.segments), format_brl(plan.estimated_cost) if plan.estimated_cost is not None else "—",
                  state.balance_text or f"unavailable ({state.error})")
    console.print(table)
    for row in plan.preview:
        console.print(f"[dim]{row['to']} {row['name']}:[/] {row['text']}", highlight=False)
    for rejected in plan.rejected[:20]:
        console.print(f"[yellow]skipped {rejected.where}:[/] {rejected.reason}", highlight=False)
    if plan.estimated_cost is not None and state.balance is not None and state.balance < plan.estimated_cost:
        console.print("[bold red]The balance does not cover the estimated cost.[/]")


@sms_app.command("reconcile")
def reconcile(
    channel: str = typer.Option(None, help="Channel name; the first SMS channel by default."),
    since: str = typer.Option(None, help="Only messages sent from then on: 2025-11-15 or '2025-11-15 14:30' "
                                         "(Brazil's time); the last 7 days by default, as far as the report goes."),
    campaign: int = typer.Option(None, help="Only this campaign's messages."),
):
    """Read the provider's status report and move messages still 'sent' to the final state their
    delivery callback never brought; prints what changed."""
    from datetime import datetime

    from contact_center.messaging.report_reconcile import reconcile_channel
    from contact_center.providers.base import ProviderError
    from contact_center.runtime import build_runtime

    start = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise typer.BadParameter(f"expected a date like 2025-11-15 or '2025-11-15 14:30', got {since!r}",
                                     param_hint="--since") from None
        start = start if start.tzinfo else start.replace(tzinfo=service.BRAZIL)
    runtime = build_runtime(get_settings())
    with transaction(runtime.session_factory) as session:
        chosen = _channel(session, channel)
        channel_id, label = chosen.id, chosen.name
    try:
        result = reconcile_channel(runtime.session_factory, runtime.settings, channel_id, since=start,
                                   campaign_id=campaign)
    except ProviderError as exc:
        err_console.print(f"[red]{label}: the status report could not be read; nothing changed:[/] {exc}",
                          highlight=False)
        raise typer.Exit(1) from None
    if result.skipped:
        console.print(f"{label}: {result.skipped}.", highlight=False)
        return
    console.print(f"{label}: changed by the status report", highlight=False)
    if result.changes:
        table = Table("from", "to", "messages")
        for (before, after), count in sorted(result.changes.items()):
            table.add_row(before, after, str(count))
        console.print(table)
    console.print(f"{result.rows} report row(s): {result.matched} matched ({result.changed} changed, "
                  f"{result.unchanged} already as far), {result.unmatched} none of our waiting messages, "
                  f"{result.ambiguous} message(s) that rows could not tell apart ({result.asked} request(s) "
                  f"asked, {result.left} left), {result.unknown_status} status(es) we do not know.", highlight=False)


@sms_app.command("relink")
def relink():
    """Link inbound messages that arrived before their contact existed; prints how many."""
    with command_session() as session:
        linked = service.relink_inbound(session)
    console.print(f"Linked {linked} inbound message(s) to their contact.")


@sms_app.command("report")
def report(limit: int = typer.Option(20, help="Rows per table.")):
    """Per-contact counts (sent, blocked by an opt-out, received, not delivered) and the latest
    failures with their reasons, times in Brasília time. A blocked message never left: it is not
    counted as sent. The reports page (/reports) has the rest."""
    from contact_center.reports.period import ZONE

    out = Message.direction == "out"
    with command_session() as session:
        rows = session.execute(
            select(Contact.id, Contact.name,
                   func.sum(case((out & Message.status.not_in(NEVER_SENT), 1), else_=0)),
                   func.sum(case((out & (Message.status == "blocked"), 1), else_=0)),
                   func.sum(case((Message.direction == "in", 1), else_=0)),
                   func.sum(case((Message.status.in_(NOT_DELIVERED), 1), else_=0)))
            .join(Message, Message.contact_id == Contact.id).group_by(Contact.id, Contact.name)
            .order_by(func.count(Message.id).desc()).limit(limit)
        ).all()
        table = Table("contact", "name", "sent", "blocked", "received", "not delivered", title="Messages per contact")
        for row in rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)
        failures = session.execute(
            select(Message.id, Message.phone_e164, Message.status, Message.status_reason, Message.created_at)
            .where(Message.status.in_(FINAL_FAILURES)).order_by(Message.id.desc()).limit(limit)
        ).all()
        table = Table("message", "phone", "status", "reason", "created (Brasília)", title="Latest failures")
        lang = language()
        for row in failures:
            table.add_row(str(row[0]), row[1], row[2], say_stored(row[3], lang) or "",
                          row[4].astimezone(ZONE).strftime("%d/%m/%Y %H:%M"))
        console.print(table)
        unlinked = session.scalar(select(func.count()).where(Message.direction == "in", Message.contact_id.is_(None)))
        if unlinked:
            console.print(f"{unlinked} inbound message(s) have no contact; `contact-center sms relink` after "
                          "adding contacts links them.")
