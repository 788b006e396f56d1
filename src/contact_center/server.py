"""`contact-center serve`: the whole product in one process on its embedded defaults."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contact_center.auth.service import ensure_first_admin
from contact_center.channels import service as channels
from contact_center.channels.models import Channel
from contact_center.db import transaction
from contact_center.errors import Conflict
from contact_center.logs import register_secret
from contact_center.runtime import Runtime, build_runtime
from contact_center.settings import Settings

log = logging.getLogger(__name__)
SANDBOX_CHANNEL = "SMS SANDBOX"
KOLMEYA_CHANNEL = "SMS Kolmeya"
WHATSAPP_SANDBOX_CHANNEL = "WhatsApp SANDBOX"
WHATSAPP_CHANNEL = "WhatsApp"


@dataclass
class Services:
    """What serve starts beside the web app, so it can stop them in order."""

    runtime: Runtime
    stoppers: list = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            stop()


def prepare(settings: Settings, console: Console, *, start_consumer: bool = True) -> Services:
    runtime = build_runtime(settings)
    services = Services(runtime)
    with transaction(runtime.session_factory) as session:
        created = ensure_first_admin(session, settings.data_dir)
    if created:
        user, path = created
        # Where, never what: console output lands in scrollback, service logs and CI output.
        console.print(f"[bold green]First run:[/] created admin user [bold]{user.username}[/]; its password is in "
                      f"{path} (readable only by you). Log in and change it, or run "
                      f"`contact-center users set-password {user.username}`: the file is then deleted.",
                      highlight=False, soft_wrap=True)
    if settings.kolmeya_token.get_secret_value():
        _ensure_kolmeya_channel(runtime, settings)
    else:
        services.stoppers.append(_start_sandbox(runtime, console))
    for secret in (settings.whatsapp_access_token, settings.whatsapp_app_secret):
        register_secret(secret.get_secret_value())
    missing = settings.whatsapp_missing()
    if not missing:
        _ensure_whatsapp_channel(runtime, settings, console)
    else:
        if len(missing) < 4:  # someone meant to configure WhatsApp: say what is left
            console.print(f"[bold yellow]WhatsApp not configured:[/] {', '.join(missing)} not set; the WhatsApp "
                          "sandbox stands in.", highlight=False, soft_wrap=True)
        services.stoppers.append(_start_whatsapp_sandbox(runtime, console))
    if start_consumer:
        consumer = runtime.jobs.consumer()
        consumer.start()
        services.stoppers.append(lambda: consumer.stop(graceful=True))
        runtime.jobs.sweep_now()  # after a crash, take back what the last run left at once
    return services


def _ensure_kolmeya_channel(runtime: Runtime, settings: Settings) -> None:
    """With a token configured and no Kolmeya channel yet, create one (token kept write-only)."""
    with transaction(runtime.session_factory) as session:
        if session.scalar(select(Channel.id).where(Channel.provider == "kolmeya").limit(1)) is None:
            channels.create_channel(session, name=KOLMEYA_CHANNEL, provider="kolmeya", via="cli",
                                    credentials={"token": settings.kolmeya_token.get_secret_value()})
            log.info("created channel %r from CONTACT_CENTER_KOLMEYA_TOKEN", KOLMEYA_CHANNEL)


def _sandbox_channel(runtime: Runtime, name: str, **create) -> int:
    """The id of the sandbox channel `name`, created if missing. Two servers started at once on one
    database (web processes beside workers) may both find it missing: the one whose insert loses
    finds the other's, whether the database refused the insert or create_channel's own check of
    the name already saw the other's row (PostgreSQL reads what is committed statement by statement)."""
    try:
        with transaction(runtime.session_factory) as session:
            channel = session.scalar(select(Channel).where(Channel.name == name))
            if channel is None:
                channel = channels.create_channel(session, name=name, via="cli", **create)
            return channel.id
    except (IntegrityError, Conflict):
        with transaction(runtime.session_factory) as session:
            return session.scalar(select(Channel.id).where(Channel.name == name))


def _start_sandbox(runtime: Runtime, console: Console):
    """No Kolmeya token: run the Kolmeya sandbox beside us and point a SANDBOX channel at it."""
    from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
    from contact_center.providers.kolmeya.sandbox import SandboxServer

    settings = runtime.settings
    channel_id = _sandbox_channel(runtime, SANDBOX_CHANNEL, provider="kolmeya_sandbox",
                                  credentials={"token": SANDBOX_TOKEN}, settings={"price_per_segment": "0.07"})
    with transaction(runtime.session_factory) as session:
        urls = channels.webhook_urls(session.get(Channel, channel_id), settings.public_base_url)
    sandbox = SandboxServer(SANDBOX_TOKEN, reply_webhook_url=urls["reply"], status_webhook_url=urls["status"],
                            price_per_segment="0.07", status_delay_seconds=1.0)
    sandbox.start()
    with transaction(runtime.session_factory) as session:
        channel = session.get(Channel, channel_id)
        channel.settings = {**channel.settings, "base_url": sandbox.base_url}  # a new port each start
    console.print(f"[bold yellow]SANDBOX:[/] no CONTACT_CENTER_KOLMEYA_TOKEN, so SMS go to the Kolmeya sandbox at "
                  f"{sandbox.root_url} (ledger: {sandbox.control_url}/ledger). Nothing reaches a real phone.",
                  highlight=False)
    return sandbox.stop


def _ensure_whatsapp_channel(runtime: Runtime, settings: Settings, console: Console) -> None:
    """With the WhatsApp settings configured and no WhatsApp Cloud channel yet, create one; its
    verify token is generated (`contact-center channels webhooks` prints it for Meta's dashboard)."""
    with transaction(runtime.session_factory) as session:
        if session.scalar(select(Channel.id).where(Channel.provider == "whatsapp_cloud").limit(1)) is None:
            channels.create_channel(
                session, name=WHATSAPP_CHANNEL, provider="whatsapp_cloud", via="cli",
                credentials={"access_token": settings.whatsapp_access_token.get_secret_value(),
                             "app_secret": settings.whatsapp_app_secret.get_secret_value()},
                settings={"phone_number_id": settings.whatsapp_phone_number_id,
                          "waba_id": settings.whatsapp_waba_id})
            # Meta sends nothing until the callback URL and verify token are in its dashboard: say so.
            console.print(f"[bold green]WhatsApp:[/] created channel [bold]{WHATSAPP_CHANNEL}[/] from the "
                          "CONTACT_CENTER_WHATSAPP_* settings; `contact-center channels webhooks "
                          f"{WHATSAPP_CHANNEL}` prints the callback URL and verify token for Meta's app dashboard.",
                          highlight=False, soft_wrap=True)


def _start_whatsapp_sandbox(runtime: Runtime, console: Console):
    """No WhatsApp account configured: run the WhatsApp sandbox beside us and point a SANDBOX channel
    at it. The sandbox lives in memory, so every start is a new account: a new port and app secret."""
    from contact_center.providers.whatsapp_cloud.provider import SANDBOX_TOKEN
    from contact_center.providers.whatsapp_cloud.sandbox import SandboxConfig, SandboxServer

    settings = runtime.settings
    app_secret = secrets.token_urlsafe(24)
    register_secret(app_secret)
    account = SandboxConfig()  # its number and business account ids
    credentials = {"access_token": SANDBOX_TOKEN, "app_secret": app_secret}
    channel_id = _sandbox_channel(runtime, WHATSAPP_SANDBOX_CHANNEL, provider="whatsapp_sandbox",
                                  credentials=credentials,
                                  settings={"phone_number_id": account.phone_number_id, "waba_id": account.waba_id})
    with transaction(runtime.session_factory) as session:
        callback_url = channels.webhook_urls(session.get(Channel, channel_id), settings.public_base_url)["callback"]
    sandbox = SandboxServer(SANDBOX_TOKEN, webhook_url=callback_url, app_secret=app_secret,
                            phone_number_id=account.phone_number_id, waba_id=account.waba_id)
    sandbox.start()
    with transaction(runtime.session_factory) as session:
        channel = session.get(Channel, channel_id)
        channel.credentials = {**channel.credentials, **credentials}
        channel.settings = {**channel.settings, "phone_number_id": sandbox.phone_number_id,
                            "waba_id": sandbox.waba_id, "base_url": sandbox.base_url}
        # A pause was the last sandbox's doing (a forced error); this one is a new account.
        channel.paused_at, channel.paused_reason = None, None
    channels.forget_whatsapp_numbers()
    example = '{"from": "+55 11 90000-0001", "name": "Cliente Teste", "text": "Oi"}'
    console.print(f"[bold yellow]SANDBOX:[/] no WhatsApp account configured, so WhatsApp goes to the WhatsApp "
                  f"sandbox at {sandbox.base_url} (ledger: {sandbox.control_url}/ledger). A customer writes with "
                  f"`curl -X POST {sandbox.control_url}/inbound -H 'Content-Type: application/json' -d '{example}'`. "
                  "Nothing reaches a real phone.", highlight=False, soft_wrap=True)
    return sandbox.stop
