from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from contact_center.clitools import command_session, console, err_console, said
from contact_center.contacts import fields, service, tags
from contact_center.contacts.duplicates import DuplicateContact, refuse_phone_duplicates
from contact_center.contacts.models import FIELD_TYPES, Contact

contacts_app = typer.Typer(help="Customers and their phone identity.", no_args_is_help=True)
fields_app = typer.Typer(help="Fields the business defines for its contacts (amount due, due date…).",
                         no_args_is_help=True)
contacts_app.add_typer(fields_app, name="fields")

FIELD_OPTION = typer.Option(None, "--field", metavar="KEY=VALUE", show_default=False,
                            help="A value of a field the business defined (see `contacts fields list`); "
                                 "repeatable; KEY= clears it.")


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"{option} {item!r}: write it as KEY=VALUE, e.g. {option} valor_parcela=1.234,56")
        pairs[key.strip()] = value
    return pairs


def _table(contacts: list[Contact], definitions: list[fields.FieldDefinition] = ()) -> Table:
    table = Table("id", "name", "phone", "mobile", "email", "document", "opt-out", "tags",
                  *(d.key for d in definitions))
    for c in contacts:
        opt_out = ", ".join(name for name, flag in (("sms", c.opt_out_sms), ("whatsapp", c.opt_out_whatsapp)) if flag)
        values = fields.values_of(c) if definitions else {}
        table.add_row(str(c.id), escape(c.name), c.phone_e164 or "", c.mobile_e164 or "", c.email or "",
                      c.document or "", opt_out, escape(", ".join(c.tags)),
                      *(escape(fields.as_text(d, values.get(d.key))) for d in definitions))
    return table


@contacts_app.command("add")
def add(
    name: str,
    phone: str = typer.Option(None, show_default=False),
    mobile: str = typer.Option(None, show_default=False),
    email: str = typer.Option(None, show_default=False),
    document: str = typer.Option(None, help="CPF", show_default=False),
    tag: list[str] = typer.Option(None, "--tag", help="A tag; repeatable.", show_default=False),
    create_anyway: bool = typer.Option(False, "--create-anyway",
                                       help="Do not ask when another contact has one of its phones."),
    field: list[str] = FIELD_OPTION,
):
    """Create a contact. A phone another contact has is asked about (or --create-anyway); a CPF
    another contact has is refused."""
    data = {"name": name, "phone": phone, "mobile": mobile, "email": email, "document": document, "tags": tag or [],
            "fields": _pairs(field, "--field")}
    with command_session() as session:
        if not create_anyway:
            try:
                refuse_phone_duplicates(session, data)
            except DuplicateContact as duplicate:
                err_console.print(f"[yellow]warning:[/] {escape(said(duplicate))}", highlight=False, soft_wrap=True)
                if not typer.confirm("Create another contact with this phone anyway?"):
                    raise typer.Exit(1) from None
        contact = service.create_contact(session, data)
        console.print(_table([contact], fields.definitions(session)))


@contacts_app.command("update")
def update(
    contact_id: int,
    name: str = typer.Option(None, show_default=False),
    phone: str = typer.Option(None, show_default=False, help="'' clears it."),
    mobile: str = typer.Option(None, show_default=False, help="'' clears it."),
    email: str = typer.Option(None, show_default=False),
    document: str = typer.Option(None, help="CPF; '' clears it.", show_default=False),
    opt_out_sms: bool = typer.Option(None, "--opt-out-sms/--opt-in-sms", show_default=False),
    field: list[str] = FIELD_OPTION,
):
    """Change a contact; only the options given change, and a bad value changes nothing."""
    changes = {key: value for key, value in {"name": name, "phone": phone, "mobile": mobile, "email": email,
                                             "document": document, "opt_out_sms": opt_out_sms,
                                             "fields": _pairs(field, "--field") or None}.items()
               if value is not None}
    if opt_out_sms is None:
        with command_session() as session:
            contact = service.update_contact(session, service.get_contact(session, contact_id), changes)
            console.print(_table([contact], fields.definitions(session)))
        return
    # An SMS opt-out goes to the providers' blacklists by a job (run by serve or worker): it needs the queue.
    from contact_center.audit.service import Actor, act_as
    from contact_center.db import transaction
    from contact_center.runtime import build_runtime
    from contact_center.settings import get_settings

    runtime = build_runtime(get_settings())
    with transaction(runtime.session_factory) as session:
        act_as(session, Actor("cli"))
        contact = service.update_contact(session, service.get_contact(session, contact_id), changes)
        console.print(_table([contact]))


@contacts_app.command("tag")
def tag_contact(contact_id: int, names: list[str] = typer.Argument(..., metavar="TAG...", help="Tags to add.")):
    """Add tags to a contact (those it has already, in any spelling, stay as they are)."""
    with command_session() as session:
        contact = service.get_contact(session, contact_id)
        added = tags.add(session, [(contact.id, name) for name in tags.clean(names, field="TAG")])
        console.print(f"{added} tag(s) added to contact {contact.id}; it has: {escape(', '.join(contact.tags))}.",
                      highlight=False)


@contacts_app.command("untag")
def untag_contact(contact_id: int, names: list[str] = typer.Argument(..., metavar="TAG...", help="Tags to remove.")):
    """Remove tags from a contact, whatever their case or accents."""
    with command_session() as session:
        contact = service.get_contact(session, contact_id)
        removed = tags.remove(session, contact.id, names)
        left = ", ".join(contact.tags) or "no tags"
        console.print(f"{removed} tag(s) removed from contact {contact.id}; it has: {escape(left)}.", highlight=False)


@contacts_app.command("merge")
def merge_contacts(
    survivor_id: int = typer.Argument(..., metavar="SURVIVOR", help="The contact that stays."),
    other_id: int = typer.Argument(..., metavar="OTHER", help="The contact merged into it, then removed."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
):
    """Merge OTHER into SURVIVOR: its messages, conversations, tags and identifiers move, the
    survivor's empty fields are filled from it, opt-outs are combined; OTHER is removed."""
    from contact_center.contacts import merge
    from contact_center.db import transaction
    from contact_center.runtime import build_runtime
    from contact_center.settings import get_settings

    # With the runtime, an opt-out the survivor gains reaches the blacklists (a job) and, with Redis,
    # open inboxes see the change.
    runtime = build_runtime(get_settings())
    with transaction(runtime.session_factory) as session:
        planned = merge.plan(session, survivor_id, other_id)
        console.print(f"Merge contact {other_id} ({escape(planned.other_name)}) into contact {survivor_id} "
                      f"({escape(planned.survivor_name)}):", highlight=False)
        moves = Table("moves", "count")
        moves.add_row("messages", str(planned.messages))
        moves.add_row("conversations", str(planned.conversations))
        moves.add_row("  joined to one on the same channel", str(planned.conversations_joined))
        for table, rows in planned.rows.items():
            moves.add_row(table.removeprefix("contact_"), str(rows))
        console.print(moves)
        for title, values in (("takes", planned.taken), ("not kept (the survivor's own stays)", planned.not_kept)):
            if values:
                console.print(f"{title}: " + "; ".join(f"{k} {escape(str(v))}" for k, v in values.items()),
                              highlight=False)
        if planned.opt_outs_gained:
            console.print(f"opt-outs gained: {', '.join(planned.opt_outs_gained)}", highlight=False)
        if not yes and not typer.confirm(f"Merge them and remove contact {other_id}?"):
            raise typer.Exit(1)
        merge.merge(session, survivor_id, other_id, actor=None, via="cli")
        console.print(f"Contact {other_id} merged into contact {survivor_id}.")


@contacts_app.command("duplicates")
def list_duplicates(
    after: str = typer.Option(None, help="Start after this group (the cursor the previous page printed).",
                              show_default=False),
    limit: int = typer.Option(50, help="Groups per page."),
):
    """Groups of likely duplicates: the same phone (any field, any written form), email or WhatsApp number."""
    from contact_center.contacts.duplicates import report

    with command_session() as session:
        groups, next_after = report(session, after=after, limit=limit)
    if not groups:
        console.print("No likely duplicates." if after is None else "No more groups.")
        return
    table = Table("same", "value", "contacts")
    for group in groups:
        table.add_row(group.reason, escape(group.value),
                      escape(", ".join(f"{contact_id} {name}" for contact_id, name in group.contacts)))
    console.print(table)
    if next_after:
        console.print(f"More: contact-center contacts duplicates --after '{escape(next_after)}'", highlight=False)


@contacts_app.command("delete")
def delete(contact_id: int, yes: bool = typer.Option(False, "--yes", help="Do not ask.")):
    """Delete a contact (its messages stay, unlinked)."""
    with command_session() as session:
        contact = service.get_contact(session, contact_id)
        if not yes and not typer.confirm(f"Delete contact {contact.id} ({contact.name})?"):
            raise typer.Exit(1)
        service.delete_contact(session, contact_id)
        console.print(f"Contact {contact_id} deleted.")


@contacts_app.command("find")
def find(phone: str):
    """Which contact a phone number, written any way, belongs to."""
    with command_session() as session:
        contact = service.find_by_phone(session, phone)
        if contact is None:
            console.print(f"No contact has the phone {phone!r}.")
            raise typer.Exit(1)
        console.print(_table([contact]))


@contacts_app.command("list")
def list_contacts(
    search: str = typer.Option(None, help="Name, email, CPF or phone.", show_default=False),
    tag: list[str] = typer.Option(None, "--tag", help="Only contacts with this tag; repeat for all of them.",
                                  show_default=False),
    where: list[str] = typer.Option(
        None, "--where", metavar="KEY=VALUE", show_default=False,
        help="Filter on a field: vencimento_from=01/11/2025, vencimento_to=…, valor_parcela_min=1000, "
             "situacao=quitado (like the API's field.* parameters). Repeatable.",
    ),
    offset: int = 0,
    limit: int = 50,
):
    """List contacts, a page at a time."""
    with command_session() as session:
        filters = fields.parse_filters(session, [(f"field.{k}", v) for k, v in _pairs(where, "--where").items()])
        items, total = service.list_contacts(session, search=search, tags_=tag, offset=offset, limit=limit,
                                             field_filters=filters)
        console.print(_table(items, fields.definitions(session)))
        shown = f"more than {fields.COUNT_LIMIT:,}" if filters and total > fields.COUNT_LIMIT else f"{total}"
        console.print(f"{len(items)} of {shown} contact(s), from offset {offset}.")


@contacts_app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="CSV with a header line; ',' or ';', UTF-8 or Excel's Windows-1252."),
    map_: list[str] = typer.Option(
        None, "--map", metavar="HEADER=FIELD", show_default=False,
        help="Read column HEADER as FIELD (name, phone, mobile, email, document, notes, opt_out_sms, "
        "opt_out_whatsapp, tags, or the key of a field the business defined; '-' ignores the column). "
        "Repeatable; other headers (and a field's key or label) are still recognised.",
    ),
    delimiter: str = typer.Option(None, help="',' or ';' (sniffed when not given).", show_default=False),
    rejections: Path = typer.Option(
        None, help="Write every rejected row here (default: FILE.rejected.csv, when any row is rejected).",
        show_default=False,
    ),
):
    """Create or update contacts from a CSV file.

    A row updates the contact with the same CPF, else the one with the same phone (any written
    form), else creates one. Empty cells never clear a field. Bad rows are reported, not imported.
    """
    from contact_center.contacts.csv_io import ImportFileError, import_contacts
    from contact_center.db import background_checkpoints
    from contact_center.runtime import open_database
    from contact_center.settings import get_settings

    mapping = {}
    for item in map_ or []:
        header, sep, field = item.rpartition("=")
        if not sep or not header.strip():
            _fail(f"--map {item!r}: write it as HEADER=FIELD, e.g. --map 'Tel. Residencial=phone'")
        mapping[header] = field
    try:
        size = file.stat().st_size
        handle = open(file, "rb")
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    engine, factory = open_database(get_settings())
    with handle, background_checkpoints(engine), Progress(
        TextColumn("importing"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
    ) as bar:
        task = bar.add_task("import", total=size, rate="")
        started = time.perf_counter()

        def on_progress(rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=handle.tell(), rate=f"{rows:,} rows, {rate:,.0f} rows/s")

        try:
            report = import_contacts(factory, handle, mapping=mapping or None, delimiter=delimiter, progress=on_progress)
        except ImportFileError as exc:
            _fail(said(exc))
        bar.update(task, completed=size)

    summary = Table("", "rows", title=f"Import of {escape(str(file))}", title_justify="left")
    summary.add_row("read", f"{report.rows_read:,}")
    summary.add_row("created", f"{report.created:,}")
    summary.add_row("updated", f"{report.updated:,}")
    summary.add_row("merged duplicates", f"{len(report.merged_duplicates):,}")
    summary.add_row("rejected", f"{report.rejected_count:,}")
    console.print(summary)
    columns = ", ".join(f"{escape(h)} -> {f}" for h, f in report.columns.items())
    console.print(f"Columns: {columns}.", highlight=False)
    if report.ignored_columns:
        console.print(f"Ignored columns: {escape(', '.join(report.ignored_columns))}.", highlight=False)
    console.print(
        f"Encoding {report.encoding}, delimiter {report.delimiter!r}; {report.elapsed:.1f} s, "
        f"{report.rows_per_second:,.0f} rows/s.", highlight=False,
    )
    if report.rejected:
        shown = Table("line", "field", "reason", title="Rejected rows", title_justify="left")
        for rejected in report.rejected[:20]:
            shown.add_row(str(rejected.line), rejected.field, escape(rejected.reason))
        console.print(shown)
    if report.rejected_count or rejections is not None:
        target = rejections or file.with_name(f"{file.stem}.rejected.csv")
        try:
            report.write_rejections(target)
        except OSError as exc:
            _fail(f"cannot write the rejected rows to {target}: {exc.strerror or exc}")
        console.print(f"{report.rejected_count:,} rejected row(s) written to {escape(str(target))}.", highlight=False)


@contacts_app.command("export")
def export_file(
    file: Path = typer.Argument(..., help="Where to write the CSV (UTF-8 with BOM, ',' delimited)."),
    search: str = typer.Option(None, help="Only contacts matching a name, email, CPF or phone.", show_default=False),
):
    """Write contacts to a CSV file that `contacts import` reads back."""
    from contact_center.contacts.csv_io import export_contacts

    with command_session() as session:
        try:
            count = export_contacts(session, file, search=search)
        except OSError as exc:
            _fail(f"cannot write {file}: {exc.strerror or exc}")
    console.print(f"Exported {count:,} contact(s) to {escape(str(file))}.", highlight=False)


@fields_app.command("list")
def fields_list():
    """The fields defined, and how many contacts hold a value of each."""
    with command_session() as session:
        definitions = fields.definitions(session)
        if not definitions:
            console.print("No contact fields yet: add one with `contact-center contacts fields add KEY "
                          "--label LABEL --type money`.")
            return
        table = Table("key", "label", "type", "choices", "values")
        for d in definitions:
            table.add_row(d.key, escape(d.label), d.type, escape(", ".join(d.choices)),
                          f"{fields.count_values(session, d.id):,}")
        console.print(table)


@fields_app.command("add")
def fields_add(
    key: str = typer.Argument(..., help="Lowercase letters, digits and _ (valor_parcela); templates read "
                              "contact.KEY."),
    label: str = typer.Option(..., help="What operators read (Valor da parcela)."),
    type_: str = typer.Option("text", "--type", help=f"One of {', '.join(FIELD_TYPES)}."),
    choice: list[str] = typer.Option(None, "--choice", help="An option of a choice field; repeatable.",
                                     show_default=False),
):
    """Define a field for every contact."""
    with command_session() as session:
        added = fields.add_field(session, key=key, label=label, type=type_, choices=choice, via="cli")
    console.print(f"Field {added.key} ({added.type}) added: templates read it as contact.{added.key}.",
                  highlight=False)


@fields_app.command("remove")
def fields_remove(key: str, yes: bool = typer.Option(False, "--yes", help="Do not ask.")):
    """Remove a field and every contact's value of it."""
    with command_session() as session:
        held = fields.count_values(session, fields.get_field(session, key).id)
        if held and not yes and not typer.confirm(f"{held:,} contact(s) hold a value of {key}; remove the "
                                                  "field and those values?"):
            raise typer.Exit(1)
        fields.remove_field(session, key, confirm=True, via="cli")
    console.print(f"Field {key} removed ({held:,} value(s) with it).", highlight=False)


def _fail(message: str):
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)
