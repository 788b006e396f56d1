"""The product running for real (uvicorn, Huey consumer, Kolmeya sandbox, a fresh migrated database
of each kind) and Debian's Chromium driven by Playwright, with a team of operators to log in as."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.conftest import BACKENDS, _migrated
from tests.live import PASSWORD, Live, start_live

CHROMIUM = "/usr/bin/chromium"
TEAM = (("ana", "Ana Lima", "agent"), ("bruno", "Bruno Dias", "agent"), ("sofia", "Sofia Reis", "supervisor"))

pytestmark = pytest.mark.browser


class Product(Live):
    """The running product (tests/live.py) with a team of operators and a customer's side."""

    _numbers = itertools.count(1)

    def new_phone(self) -> str:
        """A number no other test used: tests share one running product."""
        n = next(self._numbers)
        return f"+55 11 9{n:04d}-{n:04d}"

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
                              headers=self.auth("sofia")).json()
        return found["items"][0]["id"] if found["items"] else None


def run_product(request, tmp_path_factory, **options):
    """The product on a fresh database of the fixture's backend, until the generator is closed."""
    source = _migrated(request.param, tmp_path_factory)
    engine = next(source)
    # Each status step waits a little, so every tick is on screen long enough to be seen.
    running, stop = start_live(engine, tmp_path_factory.mktemp("product"),
                               {"status_delay_seconds": 0.4, "balance": "1234.56"}, live_class=Product,
                               **{"team": TEAM, **options})
    yield running
    stop()
    next(source, None)


@pytest.fixture(scope="module", params=BACKENDS)
def product(request, tmp_path_factory):
    yield from run_product(request, tmp_path_factory)


WA_TEAM = (*TEAM, ("root", "Rita Admin", "admin"))


def run_whatsapp_product(request, tmp_path_factory, status_delay_seconds: float):
    """The product with a WhatsApp sandbox channel too (its templates synced by Rita, the admin);
    statuses `status_delay_seconds` apart."""
    running = run_product(request, tmp_path_factory, team=WA_TEAM,
                          whatsapp={"status_delay_seconds": status_delay_seconds})
    live = next(running)
    synced = live.http.post(f"/api/channels/{live.whatsapp_channel_id}/whatsapp-templates/sync",
                            headers=live.auth("root"))
    assert synced.status_code == 200, synced.text
    yield live
    next(running, None)


@pytest.fixture(scope="module")
def browser():
    """Chromium for one module of browser tests. Not for the session: Playwright's sync API keeps an
    event loop running on the main thread while it is open, and asyncio.run() in later tests refuses
    to start under it."""
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
