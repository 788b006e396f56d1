"""`contact-center contacts export-data` and `contacts erase`: LGPD requests from the server's shell."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from contact_center.clitools import command_session, console
from contact_center.contacts.cli import contacts_app
from contact_center.settings import get_settings


@contacts_app.command("export-data")
def export_data(
    contact_id: int,
    out: Path = typer.Option(None, "--out", "-o", help="The ZIP to write; contato-ID-dados.zip when not given.",
                             show_default=False),
):
    """Write everything we hold about a contact (LGPD access request) to a ZIP of JSON files and media."""
    from contact_center.privacy.export import export_contact

    target = out or Path(f"contato-{contact_id}-dados.zip")
    with command_session() as session:
        content, counts = export_contact(session, contact_id, get_settings())
        target.write_bytes(content)  # before the commit: the audit entry names an export that exists
    console.print(f"Wrote {escape(str(target))}: " + ", ".join(f"{name} {n}" for name, n in counts.items()),
                  highlight=False)


@contacts_app.command("erase")
def erase(
    contact_id: int,
    reason: str = typer.Option(..., help="Why (the request and its protocol); kept in the audit log."),
    requested_by: str = typer.Option(..., "--requested-by", help="Who asked: the customer, their lawyer, the DPO."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
):
    """Erase a contact's personal data (LGPD): name, phones, email, CPF, notes, identifiers, message
    texts and media. Message rows stay, so reports keep their counts. This cannot be undone."""
    from contact_center.contacts.service import get_contact
    from contact_center.privacy.erasure import erase_contact

    with command_session() as session:
        contact = get_contact(session, contact_id)
        if not yes and not typer.confirm(f"Erase every personal data of contact {contact.id} ({contact.name})? "
                                         "This cannot be undone."):
            raise typer.Exit(1)
        counts = erase_contact(session, contact_id, reason=reason, requested_by=requested_by, settings=get_settings())
    console.print(f"Contact {contact_id} erased: " + ", ".join(f"{name} {n}" for name, n in counts.items()),
                  highlight=False)
