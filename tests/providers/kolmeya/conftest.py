"""Shared test doubles: the Kolmeya sandbox and a tiny server standing in for our webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from contact_center.providers.kolmeya.sandbox import SandboxServer

# Short delays keep the suite fast; callbacks still travel over real HTTP.
FAST = {"status_delay_seconds": 0.02, "callback_retry_delay_seconds": 0.02, "timeout_sleep_seconds": 1.0}


@dataclass
class Received:
    path: str  # with the query string
    body: Any


class CallbackReceiver:
    """Records every POST it gets; answers 500 to the first `fail_first` of them."""

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
                        receiver.received.append(Received(self.path, json.loads(raw)))
                        receiver._condition.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "success"}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 5.0, settle: float = 0.15) -> list[Received]:
        """Wait until `count` callbacks arrived, then a little longer to catch any extra ones."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} callbacks, got {len(self.received)}: {self.received}"
                    )
                self._condition.wait(left)
        time.sleep(settle)
        return list(self.received)

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as running:
        yield running


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    started: list[SandboxServer] = []

    def start(**options: Any) -> SandboxServer:
        server = SandboxServer(**{**FAST, **options})
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    return sandbox_factory()
