from __future__ import annotations

import json

import typer
from rich.table import Table

from contact_center.channels import service
from contact_center.clitools import command_session, console, err_console, language
from contact_center.settings import get_settings

channels_app = typer.Typer(help="Channels: provider accounts that send and receive.", no_args_is_help=True)
templates_app = typer.Typer(help="A WhatsApp channel's message templates, as approved at Meta.", no_args_is_help=True)
channels_app.add_typer(templates_app, name="templates")

# What a WhatsApp channel's status reports, labelled by the provider in Portuguese (the inbox's words).
ACCOUNT_LABELS = {"Número": "number", "Nome exibido": "display name", "Qualidade": "quality rating",
                  "Limite de mensagens": "messaging tier"}


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: write {what} as key=value")
        pairs[key.strip()] = value
    return pairs


@channels_app.command("create")
def create(
    name: str,
    provider: str = typer.Option(..., help="kolmeya, kolmeya_sandbox, whatsapp_cloud or whatsapp_sandbox"),
    credential: list[str] = typer.Option([], "--credential", "-c", help="key=value, e.g. token=… (write-only)"),
    setting: list[str] = typer.Option([], "--setting", "-s", help="key=value, e.g. segment_id=109"),
):
    """Create a channel; prints the webhook URLs to paste in the provider's panel (and, for WhatsApp,
    the verify token Meta's app dashboard asks for with the callback URL)."""
    with command_session() as session:
        channel = service.create_channel(session, name=name, provider=provider, via="cli",
                                         credentials=_pairs(credential, "credentials"),
                                         settings=_pairs(setting, "settings"))
        urls = service.webhook_urls(channel, get_settings().public_base_url)
        console.print(f"Channel {channel.id} [bold]{channel.name}[/] ({channel.provider}) created.")
        for kind, url in urls.items():
            console.print(f"  {kind} webhook: {url}", highlight=False, soft_wrap=True)
        verify_token = (channel.credentials or {}).get("verify_token")
        if verify_token:
            console.print(f"  verify token: {verify_token}", highlight=False, soft_wrap=True)
            console.print("  In Meta's app dashboard (WhatsApp > Configuration > Webhook) paste the callback URL and "
                          "this verify token, then subscribe to the messages field.", highlight=False, soft_wrap=True)


@channels_app.command("update")
def update(
    name: str,
    credential: list[str] = typer.Option([], "--credential", "-c", help="key=value; key= clears it"),
    setting: list[str] = typer.Option([], "--setting", "-s", help="key=value"),
    active: bool = typer.Option(None, "--active/--inactive", show_default=False),
):
    """Change a channel's credentials, settings or state."""
    with command_session() as session:
        channel = service.get_channel_by_name(session, name)
        service.update_channel(session, channel, via="cli", active=active,
                               credentials=_pairs(credential, "credentials") or None,
                               settings=_pairs(setting, "settings") or None)
        console.print(f"Channel [bold]{channel.name}[/] updated.")


@channels_app.command("list")
def list_channels():
    """List channels (credentials are never shown, only which are set)."""
    with command_session() as session:
        table = Table("id", "name", "provider", "active", "settings", "credentials set")
        for channel in service.list_channels(session):
            label = f"{channel.provider} (SANDBOX)" if channel.is_sandbox else channel.provider
            table.add_row(str(channel.id), channel.name, label, "yes" if channel.active else "no",
                          json.dumps(channel.settings), ", ".join(sorted(channel.credentials)))
        console.print(table)


@channels_app.command("webhooks")
def webhooks(name: str):
    """Print the channel's webhook URLs (they carry its secret) and a WhatsApp channel's verify token."""
    with command_session() as session:
        channel = service.get_channel_by_name(session, name)
        for kind, url in service.webhook_urls(channel, get_settings().public_base_url).items():
            console.print(f"{kind}: {url}", highlight=False, soft_wrap=True)
        verify_token = (channel.credentials or {}).get("verify_token")
        if verify_token:
            console.print(f"verify token: {verify_token}", highlight=False, soft_wrap=True)


@channels_app.command("status")
def status(name: str):
    """Reach the provider: the balance (SMS) or the number, display name, quality rating and messaging
    tier (WhatsApp), and why the channel is paused if it is. Exits 1 when the channel cannot send."""
    from contact_center.messaging.status import channel_status

    with command_session() as session:
        channel = service.get_channel_by_name(session, name)
    # Outside the transaction: don't hold the database meanwhile.
    state = channel_status(channel, get_settings(), language())
    label = f"{channel.name}{' (SANDBOX)' if channel.is_sandbox else ''}"
    # A paused channel's state carries the pause as its error; any other error is the provider's.
    reached = state.error is None or state.error == state.paused_reason
    if reached:
        balance = f", balance [bold]{state.balance_text}[/]" if state.balance is not None else ""
        console.print(f"{label}: connected{balance}", highlight=False)
        for label_pt, value in state.details.items():
            console.print(f"  {ACCOUNT_LABELS.get(label_pt, label_pt)}: {value}", highlight=False)
    else:
        err_console.print(f"[red]{label}: cannot reach the provider:[/] {state.error}", highlight=False)
    if state.paused_reason:
        since = f" since {channel.paused_at:%Y-%m-%d %H:%M} UTC" if channel.paused_at else ""
        err_console.print(f"[red]{label}: paused{since}, nothing is sent:[/] {state.paused_reason.rstrip('.')}. Fix the "
                          "account and run `contact-center channels update` to resume it.", highlight=False)
    if not state.ok:
        raise typer.Exit(1)


@templates_app.command("sync")
def templates_sync(name: str):
    """Fetch the channel's templates from its WhatsApp Business Account, replacing the copy we keep."""
    from contact_center.channels.whatsapp_templates import sync_templates

    with command_session() as session:
        channel = service.get_channel_by_name(session, name)
        result = sync_templates(session, channel, get_settings())  # unreachable: a clear error, exit 1
    console.print(f"{channel.name}: {result.total} template(s) synced ({result.added} new, {result.updated} updated, "
                  f"{result.removed} removed).", highlight=False)
    for problem in result.skipped:
        console.print(f"  skipped: {problem}", highlight=False, soft_wrap=True)


@templates_app.command("list")
def templates_list(name: str):
    """The channel's templates as last synced: name, language, status, category."""
    from contact_center.channels.whatsapp_templates import list_templates

    with command_session() as session:
        channel = service.get_channel_by_name(session, name)
        templates = list_templates(session, channel.id)
        if not templates:
            console.print(f"{channel.name}: no templates; run `contact-center channels templates sync {channel.name}`.",
                          highlight=False)
            return
        table = Table("name", "language", "status", "category", "reason")
        for template in templates:
            table.add_row(template.name, template.language, template.status, template.category,
                          template.status_reason or "")
        console.print(table)
