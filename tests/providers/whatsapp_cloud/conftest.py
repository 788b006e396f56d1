"""Shared test doubles: the WhatsApp sandbox and a tiny server standing in for our webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer

# Short delays keep the suite fast; webhooks still travel over real HTTP.
FAST = {"status_delay_seconds": 0.02, "callback_retry_delay_seconds": 0.02, "timeout_sleep_seconds": 1.0}
WEBHOOK_PATH = "/whatsapp/webhook"


@dataclass
class Received:
    path: str
    raw: bytes  # exactly as posted: the signature is over these bytes
    headers: dict[str, str]

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    def changes(self) -> list[dict[str, Any]]:
        return [change for entry in self.body["entry"] for change in entry["changes"]]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for change in self.changes() for s in change["value"].get("statuses", [])]

    def messages(self) -> list[dict[str, Any]]:
        return [m for change in self.changes() for m in change["value"].get("messages", [])]


class WebhookReceiver:
    """Records every POST with its raw bytes and headers; answers 500 to the first `fail_first`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_first = 0
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._condition:
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= failing
                    if not failing:
                        receiver.received.append(Received(self.path, raw, dict(self.headers.items())))
                        receiver._condition.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{WEBHOOK_PATH}"

    def wait_for(self, count: int, timeout: float = 5.0, settle: float = 0.1) -> list[Received]:
        """Wait until `count` POSTs arrived, then a little longer to catch any extra ones."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhooks, got {len(self.received)}: {self.received}")
                self._condition.wait(left)
        time.sleep(settle)
        return list(self.received)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def sandbox_factory(receiver: WebhookReceiver) -> Iterator[Callable[..., SandboxServer]]:
    started: list[SandboxServer] = []

    def start(**options: Any) -> SandboxServer:
        server = SandboxServer(**{**FAST, "webhook_url": receiver.url, **options})
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    return sandbox_factory()
