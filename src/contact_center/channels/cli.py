from __future__ import annotations

import json

import typer
from rich.table import Table

from contact_center.channels import service
from contact_center.clitools import command_session, console
from contact_center.settings import get_settings

channels_app = typer.Typer(help="Channels: provider accounts that send and receive.", no_args_is_help=True)


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
    """Create a channel; prints the webhook URLs to paste in the provider's panel."""
    with command_session() as session:
        channel = service.create_channel(session, name=name, provider=provider, via="cli",
                                         credentials=_pairs(credential, "credentials"),
                                         settings=_pairs(setting, "settings"))
        urls = service.webhook_urls(channel, get_settings().public_base_url)
        console.print(f"Channel {channel.id} [bold]{channel.name}[/] ({channel.provider}) created.")
        for kind, url in urls.items():
            console.print(f"  {kind} webhook: {url}", highlight=False, soft_wrap=True)


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
    """Print the channel's webhook URLs (they carry its secret)."""
    with command_session() as session:
        for kind, url in service.webhook_urls(service.get_channel_by_name(session, name),
                                              get_settings().public_base_url).items():
            console.print(f"{kind}: {url}", highlight=False, soft_wrap=True)
