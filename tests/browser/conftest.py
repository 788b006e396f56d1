"""The product running for real (uvicorn, Huey consumer, Kolmeya sandbox, a fresh migrated database
of each kind) and Debian's Chromium driven by Playwright, with a team of operators to log in as."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from contact_center.app import create_app
from contact_center.auth import service as auth_service
from contact_center.channels import service as channels
from contact_center.db import make_session_factory, transaction
from contact_center.jobs import Jobs, make_huey
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.runtime import Runtime, install
from contact_center.settings import Settings
from tests.conftest import BACKENDS, _migrated
from tests.live import ThreadedServer, free_port

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse"
TEAM = (("ana", "Ana Lima", "agent"), ("bruno", "Bruno Dias", "agent"), ("sofia", "Sofia Reis", "supervisor"))

pytestmark = pytest.mark.browser


@dataclass
class Product:
    base_url: str
    runtime: Runtime
    sandbox: SandboxServer
    channel_id: int
    users: dict[str, int]
    tokens: dict[str, str]
    http: httpx.Client
    reply_url: str
    consumer: object = None
    _phones: list[int] = field(default_factory=lambda: [0])

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def new_phone(self) -> str:
        """A number no other test in the module used: tests share one running product."""
        self._phones[0] += 1
        return f"+55 11 9{self._phones[0]:04d}-{self._phones[0]:04d}"

    def customer_writes(self, phone: str, text: str) -> int:
        """A customer's SMS as Kolmeya posts it to our reply webhook; returns its conversation id."""
        digits = "".join(ch for ch in phone if ch.isdigit())
        posted = self.http.post(self.reply_url, json={"phone": digits, "message": text})
        assert posted.status_code == 200, posted.text
        return self.wait_for(lambda: self._conversation_of(phone), what=f"the reply from {phone}")

    def customer_replies(self, phone: str, text: str) -> None:
        """A customer answering an SMS we sent, through the sandbox (which calls our webhook)."""
        self.sandbox.reply("".join(ch for ch in phone if ch.isdigit()), text)

    def _conversation_of(self, phone: str) -> int | None:
        found = self.http.get("/api/conversations", params={"q": phone, "status": "any"},
                              headers=self.headers("sofia")).json()
        return found["items"][0]["id"] if found["items"] else None

    def wait_for(self, predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition"):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def pause_dispatch(self) -> None:
        """Stop the job consumer: messages stay queued until resume_dispatch()."""
        self.consumer.stop(graceful=True)

    def resume_dispatch(self) -> None:
        self.consumer = self.runtime.jobs.consumer(workers=2)
        self.consumer.start()


def start_product(engine, data_dir) -> tuple[Product, Callable[[], None]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings(_env_file=None, data_dir=data_dir, secret_key="browser-test-secret-key",
                        public_base_url=base_url)
    runtime = install(Runtime(settings=settings, engine=engine, session_factory=make_session_factory(engine),
                              jobs=Jobs(make_huey(settings))))
    users, tokens = {}, {}
    with transaction(runtime.session_factory) as session:
        for username, name, role in TEAM:
            user = auth_service.create_user(session, username=username, name=name, password=PASSWORD, role=role)
            users[username] = user.id
            tokens[username] = auth_service.create_token(session, user, "browser tests")[1]
        channel = channels.create_channel(session, name="SMS SANDBOX", provider="sandbox",
                                          credentials={"token": SANDBOX_TOKEN}, settings={"price_per_segment": "0.07"})
        urls = channels.webhook_urls(channel, base_url)
        channel_id = channel.id
    # Each status step waits a little, so every tick is on screen long enough to be seen.
    sandbox = SandboxServer(SANDBOX_TOKEN, reply_webhook_url=urls["reply"], status_webhook_url=urls["status"],
                            price_per_segment="0.07", status_delay_seconds=0.4, balance="1234.56")
    sandbox.start()
    with transaction(runtime.session_factory) as session:
        channel = channels.get_channel(session, channel_id)
        channel.settings = {**channel.settings, "base_url": sandbox.base_url}
    server = ThreadedServer(create_app(runtime), port)
    server.server.config.timeout_graceful_shutdown = 1  # open event streams never end by themselves
    server.start()
    http = httpx.Client(base_url=base_url, timeout=10)
    product = Product(base_url, runtime, sandbox, channel_id, users, tokens, http, urls["reply"])
    product.resume_dispatch()

    def stop() -> None:
        http.close()
        server.stop()
        product.consumer.stop(graceful=True)
        sandbox.stop()

    return product, stop


@pytest.fixture(scope="module", params=BACKENDS)
def product(request, tmp_path_factory):
    source = _migrated(request.param, tmp_path_factory)
    engine = next(source)
    running, stop = start_product(engine, tmp_path_factory.mktemp("product"))
    yield running
    stop()
    next(source, None)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # A loaded CI machine can take seconds to re-render; the same patience for checks as for actions.
    expect.set_options(timeout=10_000)
    # Without the network flags Chromium keeps dialling Google's hosts, which this network refuses.
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


@pytest.fixture
def open_as(browser, product):
    """open_as(username) -> a logged-in page on the inbox, in its own browser context."""
    contexts = []

    def login(username: str, lang: str | None = None):
        context = browser.new_context(base_url=product.base_url, viewport={"width": 1440, "height": 900},
                                      locale="pt-BR")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        if lang:
            page.goto(f"/lang/{lang}?next=/login")
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox")
        return page

    yield login
    for context in contexts:
        context.close()
