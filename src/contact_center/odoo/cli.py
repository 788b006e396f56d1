"""`contact-center odoo sync` and `contact-center odoo status`."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import func, select

from contact_center.clitools import console, err_console, said

odoo_app = typer.Typer(help="Contacts from Odoo's partners (res.partner), and notes in their chatter.",
                       no_args_is_help=True)


@odoo_app.command("sync")
def sync(
    full: bool = typer.Option(False, "--full", help="Read every partner, not only those changed since the last sync."),
    rejections: Path = typer.Option(None, help="Write every rejected partner (id, field, reason) to this CSV file.",
                                    show_default=False),
):
    """Pull the partners changed since the last sync (all of them with --full) into contacts."""
    from contact_center.db import background_checkpoints
    from contact_center.errors import DomainError
    from contact_center.odoo import config
    from contact_center.odoo.sync import OdooSyncRunning, sync_partners
    from contact_center.runtime import open_database
    from contact_center.settings import get_settings

    settings = get_settings()
    try:
        odoo = config.from_settings(settings)
    except DomainError as exc:
        _fail(said(exc))
    engine, factory = open_database(settings)
    with background_checkpoints(engine), Progress(
        TextColumn("Odoo"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
    ) as bar:
        task = bar.add_task("sync", total=None, rate="")
        started = time.perf_counter()

        def on_progress(read: int, total: int) -> None:
            rate = read / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=read, total=total, rate=f"{rate:,.0f} parceiros/s")

        try:
            report = sync_partners(factory, odoo, full=full, progress=on_progress)
        except OdooSyncRunning as exc:
            _fail(said(exc))
        except DomainError as exc:
            _fail(f"{said(exc)}. O que já foi gravado fica; a próxima sincronização continua de onde esta parou.")

    summary = Table("", "parceiros", title="Sincronização com o Odoo" + (" (completa)" if full else ""),
                    title_justify="left")
    summary.add_row("lidos", f"{report.read:,}")
    summary.add_row("contatos criados", f"{report.created:,}")
    summary.add_row("contatos atualizados", f"{report.updated - report.unchanged:,}")
    summary.add_row("sem mudança", f"{report.unchanged:,}")
    summary.add_row("repetidos no Odoo (mesmo contato)", f"{len(report.merged_duplicates):,}")
    summary.add_row("rejeitados", f"{report.rejected_count:,}")
    if report.skipped_erased:
        summary.add_row("ignorados: contato apagado (LGPD)", f"{report.skipped_erased:,}")
    console.print(summary)
    if report.changed_fields:
        console.print("campos alterados: " + ", ".join(f"{name} ({count:,})" for name, count in
                                                       sorted(report.changed_fields.items())), highlight=False)
    console.print(f"{report.elapsed:.1f} s, {report.partners_per_second:,.0f} parceiros/s"
                  + (f"; continua depois de {report.mark[0]} (parceiro {report.mark[1]})." if report.mark else "."),
                  highlight=False)
    if report.rejected:
        shown = Table("parceiro", "campo", "motivo", title="Parceiros rejeitados", title_justify="left")
        for rejected in report.rejected[:20]:
            shown.add_row(str(rejected.partner_id), rejected.field, escape(rejected.reason))
        console.print(shown)
        if report.rejected_count > 20 and rejections is None:
            console.print(f"… e mais {report.rejected_count - 20:,}: --rejections ARQUIVO.csv grava todos.")
    if rejections is not None:
        try:
            with open(rejections, "w", encoding="utf-8-sig", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(("partner_id", "field", "reason"))
                writer.writerows((r.partner_id, r.field, r.reason) for r in report.rejected)
        except OSError as exc:
            _fail(f"não foi possível gravar {rejections}: {exc.strerror or exc}")
        console.print(f"{len(report.rejected):,} rejeitado(s) gravado(s) em {escape(str(rejections))}.",
                      highlight=False)


@odoo_app.command("status")
def status():
    """The last sync: when, what it did, where the next one continues, and how many contacts have a partner."""
    from contact_center.clitools import command_session
    from contact_center.contacts.models import Contact
    from contact_center.db import utcnow
    from contact_center.odoo import config
    from contact_center.odoo.sync import read_state
    from contact_center.settings import ENV_PREFIX, get_settings

    settings = get_settings()
    table = Table("", "")
    if config.configured(settings):
        table.add_row("Odoo", f"{settings.odoo_url}, banco {settings.odoo_database}, usuário {settings.odoo_login}")
    else:
        table.add_row("Odoo", f"não configurado ({ENV_PREFIX}ODOO_URL, _DATABASE, _LOGIN, _API_KEY)")
    interval = settings.odoo_sync_interval_minutes
    table.add_row("sincronização periódica", f"a cada {interval} min" if interval else "desligada (só por comando)")
    table.add_row("notas no histórico (chatter)", "ligadas" if settings.odoo_chatter_notes else "desligadas")
    with command_session() as session:
        state = read_state(session)
        linked = session.scalar(select(func.count()).where(Contact.odoo_partner_id.is_not(None)))
    table.add_row("contatos ligados a parceiros", f"{linked:,}")
    if state is None or state.last_started_at is None:
        table.add_row("última sincronização", "nenhuma ainda")
    else:
        running = state.running_until is not None and state.running_until > utcnow()
        outcome = ("em andamento" if running else "interrompida" if state.last_finished_at is None
                   else f"falhou: {state.last_error}" if state.last_error else "concluída")
        table.add_row("última sincronização", f"{_when(state.last_started_at)}: {outcome}")
        table.add_row("nela", f"{state.last_read:,} lidos, {state.last_created:,} criados, "
                              f"{state.last_updated - state.last_unchanged:,} atualizados, "
                              f"{state.last_unchanged:,} sem mudança, {state.last_rejected:,} rejeitados"
                              + (f", {state.last_skipped_erased:,} ignorados por terem sido apagados (LGPD)"
                                 if state.last_skipped_erased else ""))
        table.add_row("último sucesso", _when(state.last_succeeded_at) if state.last_succeeded_at else "nenhum")
        table.add_row("próxima continua depois de",
                      f"{state.mark_write_date} (parceiro {state.mark_partner_id})" if state.mark_write_date
                      else "o início (todos os parceiros)")
    console.print(table)


def _when(moment) -> str:
    return moment.strftime("%d/%m/%Y %H:%M:%S UTC")


def _fail(message: str):
    err_console.print(f"[red]erro:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)
