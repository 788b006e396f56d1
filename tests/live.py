"""The whole product running for real: our app under uvicorn on a port, a fresh migrated database,
the Huey consumer threads, and the Kolmeya sandbox calling our webhooks back over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import uvicorn
from sqlalchemy import Engine

from contact_center.app import create_app
from contact_center.auth import service as auth_service
from contact_center.channels import service as channels
from contact_center.db import make_session_factory, transaction
from contact_center.jobs import make_jobs
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer as WhatsAppSandbox
from contact_center.runtime import Runtime, install
from contact_center.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadedServer:
    def __init__(self, app, port: int):
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        config.timeout_graceful_shutdown = 1  # open event streams never end by themselves
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


PASSWORD = "correct horse"
TEAM = (("ana", "Ana", "supervisor"),)  # (username, name, role); the first one's token is `headers`


@dataclass
class Live:
    base_url: str
    runtime: Runtime
    sandbox: SandboxServer
    channel_id: int
    tokens: dict[str, str]  # API token per username
    http: httpx.Client
    reply_url: str  # our reply webhook, as the channel's provider calls it
    consumer: object = None
    whatsapp: WhatsAppSandbox | None = None  # with start_live(whatsapp=...): the WhatsApp sandbox
    whatsapp_channel_id: int | None = None
    app: object = None  # the FastAPI app being served

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    @property
    def headers(self) -> dict[str, str]:
        return self.auth(next(iter(self.tokens)))

    def wait_for(self, predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def message(self, message_id: int) -> dict:
        return self.http.get(f"/api/messages/{message_id}", headers=self.headers).json()

    def pause_dispatch(self) -> None:
        """Stop the job consumer: messages stay queued until resume_dispatch()."""
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer = None

    def resume_dispatch(self) -> None:
        if self.consumer is None:
            self.consumer = self.runtime.jobs.consumer(workers=2)
            self.consumer.start()


def database_url(engine: Engine) -> str:
    """The engine's database as a URL another process can open (the webhook writer process): on
    PostgreSQL with the test run's private schema."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            schema = connection.exec_driver_sql("SHOW search_path").scalar().strip('"')
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def start_live(engine: Engine, data_dir, sandbox_options: dict | None = None, *, team=TEAM,
               channel_name: str = "SMS SANDBOX", settings_options: dict | None = None,
               live_class: type[Live] = Live, whatsapp: dict | None = None) -> tuple[Live, Callable[[], None]]:
    """Start the product on `engine` (already migrated) with `team` as its operators and a sandbox
    channel; returns it and the function that stops it. With `whatsapp` (the WhatsApp sandbox's
    options, {} for its defaults) a WhatsApp sandbox channel too, its webhooks posted to us."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings(_env_file=None, data_dir=data_dir, secret_key="live-test-secret-key",
                        public_base_url=base_url, database_url=database_url(engine),
                        **{"webhook_writer_process": False, **(settings_options or {})})
    runtime = install(Runtime(settings=settings, engine=engine, session_factory=make_session_factory(engine),
                              jobs=make_jobs(settings)))
    tokens = {}
    with transaction(runtime.session_factory) as session:
        for username, name, role in team:
            user = auth_service.create_user(session, username=username, name=name, password=PASSWORD, role=role)
            tokens[username] = auth_service.create_token(session, user, "live tests")[1]
        channel = channels.create_channel(session, name=channel_name, provider="kolmeya_sandbox",
                                          credentials={"token": SANDBOX_TOKEN}, settings={"price_per_segment": "0.07"})
        urls = channels.webhook_urls(channel, base_url)
        channel_id = channel.id
    sandbox = SandboxServer(SANDBOX_TOKEN, reply_webhook_url=urls["reply"], status_webhook_url=urls["status"],
                            **{"price_per_segment": "0.07", "status_delay_seconds": 0.05, **(sandbox_options or {})})
    sandbox.start()
    with transaction(runtime.session_factory) as session:
        channel = channels.get_channel(session, channel_id)
        channel.settings = {**channel.settings, "base_url": sandbox.base_url}
    wa_sandbox, wa_channel_id = None, None
    if whatsapp is not None:
        wa_sandbox = WhatsAppSandbox(webhook_url=f"{base_url}/whatsapp/webhook", **whatsapp)
        wa_sandbox.start()
        with transaction(runtime.session_factory) as session:
            wa_channel_id = channels.create_channel(
                session, name="WhatsApp SANDBOX", provider="whatsapp_sandbox",
                credentials={"access_token": wa_sandbox.token, "app_secret": wa_sandbox.app_secret},
                settings={"phone_number_id": wa_sandbox.phone_number_id, "waba_id": wa_sandbox.waba_id,
                          "base_url": wa_sandbox.base_url}).id
    app = create_app(runtime)
    server = ThreadedServer(app, port)
    server.start()
    # An idle connection is dropped well before uvicorn closes it (5 s): reusing one as the server
    # closes it is a "connection reset" that no product change causes.
    http = httpx.Client(base_url=base_url, timeout=10, limits=httpx.Limits(keepalive_expiry=1.0))
    live = live_class(base_url, runtime, sandbox, channel_id, tokens, http, urls["reply"],
                      whatsapp=wa_sandbox, whatsapp_channel_id=wa_channel_id, app=app)
    live.resume_dispatch()

    def stop() -> None:
        http.close()
        server.stop()
        live.pause_dispatch()
        sandbox.stop()
        if wa_sandbox is not None:
            wa_sandbox.stop()

    return live, stop
