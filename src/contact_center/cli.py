"""The `contact-center` command."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from contact_center.auth.cli import tokens_app, users_app
from contact_center.campaigns.cli import campaigns_app
from contact_center.channels.cli import channels_app
from contact_center.clitools import said
from contact_center.contacts.cli import contacts_app
from contact_center.messaging.cli import sms_app
from contact_center.odoo.cli import odoo_app
from contact_center.privacy import cli as privacy_cli  # noqa: F401  (adds `contacts export-data` and `erase`)
from contact_center.providers.kolmeya import sandbox as kolmeya_sandbox
from contact_center.providers.whatsapp_cloud import sandbox as whatsapp_sandbox
from contact_center.templates.cli import templates_app
from contact_center.errors import DomainError
from contact_center.settings import SettingsError, get_settings, masked

app = typer.Typer(
    help="Contact Center: SMS and WhatsApp in one live inbox.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens and passwords
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Effective configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(contacts_app, name="contacts")
app.add_typer(channels_app, name="channels")
app.add_typer(sms_app, name="sms")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(templates_app, name="templates")
app.add_typer(odoo_app, name="odoo")
sandbox_app = typer.Typer(help="Local simulators of provider APIs.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
console = Console()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    worker: bool = typer.Option(True, help="Run the job consumer in this process (off when separate "
                                           "`contact-center worker` processes do it)."),
):
    """Start the service: migrations, web app, API, webhooks, jobs (and the Kolmeya and WhatsApp sandboxes
    when their accounts are not configured)."""
    import uvicorn

    from contact_center.app import create_app
    from contact_center.runtime import freeze_startup_heap
    from contact_center.server import prepare

    settings = get_settings()
    if "public_base_url" not in settings.model_fields_set:
        # Providers (the sandbox included) must call back where we actually listen.
        settings = settings.model_copy(update={"public_base_url": f"http://{host}:{port}"})
    services = prepare(settings, console, start_consumer=worker)
    console.print(f"Contact Center on [bold]http://{host}:{port}[/]  (API docs at /docs)", highlight=False)
    try:
        web_app = create_app(services.runtime)
        freeze_startup_heap()
        # Open inboxes hold event streams: without a grace limit a stop would wait for them forever.
        uvicorn.run(web_app, host=host, port=port, log_config=None, timeout_graceful_shutdown=5)
    finally:
        services.stop()


@app.command()
def worker(threads: int = typer.Option(4, help="Worker threads."),
           metrics_port: int = typer.Option(None, help="Serve this worker's /metrics on this port (dispatch latency "
                                                       "and provider errors are counted where the send happens)."),
           metrics_host: str = typer.Option("127.0.0.1", help="Address the metrics port listens on.")):
    """Run background jobs (dispatch, sweeper, provider polling) for servers started with --no-worker."""
    from contact_center.jobs import URGENT_POLL_SECONDS
    from contact_center.runtime import build_runtime, freeze_startup_heap

    settings = get_settings()
    runtime = build_runtime(settings)
    if metrics_port is not None:
        from contact_center.metrics.worker_server import start_metrics_server

        try:
            start_metrics_server(settings, metrics_host, metrics_port)
        except OSError as exc:
            raise typer.BadParameter(f"não foi possível escutar em {metrics_host}:{metrics_port}: {exc.strerror or exc}",
                                     param_hint="--metrics-port") from None
    consumer = runtime.jobs.huey.create_consumer(workers=threads, worker_type="thread", periodic=True,
                                                 max_delay=0.5)
    urgent = runtime.jobs.urgent.create_consumer(workers=1, worker_type="thread", periodic=False,
                                                 max_delay=URGENT_POLL_SECONDS)
    urgent._set_signal_handlers = lambda: None  # the main consumer's handlers stop the process
    console.print(f"Worker with {threads} thread(s) and one for urgent jobs on "
                  f"{runtime.jobs.huey.__class__.__name__}.")
    runtime.jobs.sweep_now()  # after a crash, take back what the last run left at once
    runtime.jobs.heartbeat.call_local()  # /healthz knows a consumer runs from now, not in a minute
    freeze_startup_heap()
    urgent.start()
    try:
        consumer.run()
    finally:
        urgent.stop(graceful=True)


def _sandbox_help(summary: str, module) -> str:
    """The command's summary, then the sandbox module's own endpoint list: its docstring is the one
    place that describes them. Escaped, as the list is full of brackets Rich would take for markup."""
    from rich.markup import escape

    doc = module.__doc__
    start = min(doc.index(section) for section in ("Graph API (", "Endpoints under") if section in doc)
    # The extra newline keeps the list's indentation: Rich dedents a block by its lines after the first.
    return f"{summary}\n\n\n{escape(doc[start:].strip())}"


@sandbox_app.command("kolmeya", help=_sandbox_help(
    "Run the Kolmeya sandbox alone: the same API, a ledger at /_sandbox/ledger, nothing sent for real.",
    kolmeya_sandbox))
def sandbox_kolmeya(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8900),
    reply_webhook_url: str = typer.Option(None, help="Where to post simulated replies (a channel's reply URL)."),
    status_webhook_url: str = typer.Option(None, help="Status callbacks when a send names none."),
):
    from contact_center.logs import configure_logging

    configure_logging("INFO")
    console.print(f"[bold yellow]SANDBOX[/] Kolmeya API on http://{host}:{port}/api/v1", highlight=False)
    kolmeya_sandbox.run_sandbox(host, port, reply_webhook_url=reply_webhook_url,
                                status_webhook_url=status_webhook_url)


@sandbox_app.command("whatsapp", help=_sandbox_help(
    "Run the WhatsApp Cloud API sandbox alone: the Graph calls a WhatsApp channel makes, signed "
    "webhooks to --webhook-url, customers who write through POST /_sandbox/inbound, nothing sent for real.",
    whatsapp_sandbox))
def sandbox_whatsapp(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8901),
    webhook_url: str = typer.Option(None, help="Where to post signed webhooks (a WhatsApp channel's callback "
                                               "URL, e.g. http://127.0.0.1:8000/whatsapp/webhook)."),
    app_secret: str = typer.Option(None, help="Signs the webhooks; the channel's app_secret credential must match. "
                                              "Default: the sandbox's fixed development secret."),
    phone_number_id: str = typer.Option(None, help="The number's id (default 100000000000002); give another when "
                                                   "serve's own WhatsApp SANDBOX channel has that one."),
    waba_id: str = typer.Option(None, help="The business account's id (default 100000000000001)."),
):
    from contact_center.logs import configure_logging, register_secret

    configure_logging("INFO")
    options = {"webhook_url": webhook_url}
    if phone_number_id:
        options["phone_number_id"] = phone_number_id
    if waba_id:
        options["waba_id"] = waba_id
    if app_secret:
        register_secret(app_secret)
        options["app_secret"] = app_secret
    console.print(f"[bold yellow]SANDBOX[/] WhatsApp Cloud API on http://{host}:{port} "
                  f"(a customer writes: POST http://{host}:{port}/_sandbox/inbound)", highlight=False, soft_wrap=True)
    whatsapp_sandbox.run_sandbox(host, port, **options)


@sandbox_app.command("odoo")
def sandbox_odoo(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8902),
    partners: int = typer.Option(1000, help="How many fictitious partners it has (phones written many ways)."),
):
    """Run the Odoo sandbox alone: the XML-RPC calls `odoo sync` and the chatter notes make, with fictitious
    partners; point CONTACT_CENTER_ODOO_* at what it prints."""
    from contact_center.odoo.sandbox import OdooSandbox, sample_partners

    sandbox = OdooSandbox(sample_partners(partners), host=host, port=port)
    console.print(f"[bold yellow]SANDBOX[/] Odoo on {sandbox.url} with {partners:,} partners: "
                  f"CONTACT_CENTER_ODOO_URL={sandbox.url} CONTACT_CENTER_ODOO_DATABASE={sandbox.database} "
                  f"CONTACT_CENTER_ODOO_LOGIN={sandbox.login} CONTACT_CENTER_ODOO_API_KEY={sandbox.api_key}",
                  highlight=False, soft_wrap=True)
    sandbox.serve_forever()


@db_app.command("upgrade")
def db_upgrade():
    """Apply every pending migration."""
    from contact_center.migrations import current_revision
    from contact_center.runtime import open_database

    engine, _ = open_database(get_settings())
    console.print(f"Database at revision [bold]{current_revision(engine)}[/].")


@config_app.command("show")
def config_show():
    """Print the effective settings, secrets masked."""
    table = Table("setting", "value")
    for name, value in masked(get_settings()).items():
        table.add_row(name, value)
    console.print(table)


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        Console(stderr=True).print(f"[red]configuration error:[/] {exc}", highlight=False)
        sys.exit(2)
    except DomainError as exc:
        Console(stderr=True).print(f"[red]error:[/] {said(exc)}", highlight=False)
        sys.exit(1)
