"""`contact-center serve`: the whole product in one process on its embedded defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rich.console import Console
from sqlalchemy import select

from contact_center.auth.service import ensure_first_admin
from contact_center.channels import service as channels
from contact_center.channels.models import Channel
from contact_center.db import transaction
from contact_center.runtime import Runtime, build_runtime
from contact_center.settings import Settings

log = logging.getLogger(__name__)
SANDBOX_CHANNEL = "SMS SANDBOX"
KOLMEYA_CHANNEL = "SMS Kolmeya"


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


def _start_sandbox(runtime: Runtime, console: Console):
    """No Kolmeya token: run the Kolmeya sandbox beside us and point a SANDBOX channel at it."""
    from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
    from contact_center.providers.kolmeya.sandbox import SandboxServer

    settings = runtime.settings
    with transaction(runtime.session_factory) as session:
        channel = session.scalar(select(Channel).where(Channel.name == SANDBOX_CHANNEL))
        if channel is None:
            channel = channels.create_channel(session, name=SANDBOX_CHANNEL, provider="kolmeya_sandbox", via="cli",
                                              credentials={"token": SANDBOX_TOKEN},
                                              settings={"price_per_segment": "0.07"})
        urls = channels.webhook_urls(channel, settings.public_base_url)
        channel_id = channel.id
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
