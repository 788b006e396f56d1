from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from contact_center.clitools import command_session, console
from contact_center.contacts.service import get_contact
from contact_center.messaging.segments import count_segments
from contact_center.settings import get_settings
from contact_center.templates import service

templates_app = typer.Typer(help="Message templates (Jinja2: contact, user, company).", no_args_is_help=True)


def _body(body: str | None, file: Path | None) -> str | None:
    if body is not None and file is not None:
        raise typer.BadParameter("give --body or --file, not both")
    return file.read_text(encoding="utf-8") if file else body


@templates_app.command("list")
def list_templates():
    """List templates."""
    with command_session() as session:
        table = Table("id", "name", "body", "updated")
        for template in service.list_templates(session):
            table.add_row(str(template.id), template.name, template.body.replace("\n", " ⏎ ")[:80],
                          template.updated_at.isoformat(timespec="minutes"))
        console.print(table)


@templates_app.command("create")
def create(
    name: str,
    body: str = typer.Option(None, help="The template text."),
    file: Path = typer.Option(None, exists=True, dir_okay=False, help="Read the text from a file."),
    description: str = typer.Option(None),
):
    """Create a template; a syntax error or unknown variable is refused with its line."""
    text = _body(body, file)
    if text is None:
        raise typer.BadParameter("give the text with --body or --file")
    with command_session() as session:
        template = service.create_template(session, name=name, body=text, description=description, user=None,
                                           settings=get_settings(), via="cli")
        console.print(f"Template {template.id} [bold]{template.name}[/] created.")


@templates_app.command("update")
def update(
    name: str,
    body: str = typer.Option(None),
    file: Path = typer.Option(None, exists=True, dir_okay=False),
    rename: str = typer.Option(None, help="A new name."),
    description: str = typer.Option(None),
):
    """Change a template's text, name or description."""
    with command_session() as session:
        template = service.get_template_by_name(session, name)
        service.update_template(session, template, name=rename, body=_body(body, file), description=description,
                                user=None, settings=get_settings(), via="cli")
        console.print(f"Template [bold]{template.name}[/] updated.")


@templates_app.command("delete")
def delete(name: str):
    """Delete a template (messages already sent keep their text)."""
    with command_session() as session:
        service.delete_template(session, service.get_template_by_name(session, name), None, via="cli")
        console.print(f"Template [bold]{name}[/] deleted.")


@templates_app.command("preview")
def preview(name: str, contact_id: int = typer.Option(None, help="Render for this contact; a sample otherwise.")):
    """Render a template for a contact, with its SMS segment count."""
    with command_session() as session:
        template = service.get_template_by_name(session, name)
        contact = get_contact(session, contact_id) if contact_id else service.SAMPLE_CONTACT
        text = service.render_for(template.body, contact, None, get_settings(), session)
    info = count_segments(text)
    console.print(text, highlight=False)
    console.print(f"[dim]{info.characters} characters, {info.encoding}, {info.segments} segment(s)[/]")
