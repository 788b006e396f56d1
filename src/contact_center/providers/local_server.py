"""A provider sandbox (an ASGI app) served on a local port from a background thread: for tests,
and for `serve` when a provider has no credentials."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse


class LocalServer:
    """`app` on `host`:`port` (0: a free one, known once started). Subclasses add their URLs and
    the conveniences over their control endpoints (`_control`)."""

    name = "sandbox"  # for the thread and the errors
    control_prefix = "/_sandbox"

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def control_url(self) -> str:
        return self.root_url + self.control_prefix

    def start(self) -> None:
        # Bind first so the real port is known before the server thread starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=self.name.lower().replace(" ", "-"), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start; see the log above")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.request(method, self.control_url + path, json=body, timeout=10)
        if response.is_error:
            raise RuntimeError(f"{self.name} {method} {path} failed: HTTP {response.status_code} {response.text}")
        return response.json()


# For the sandboxes' control endpoints (/_sandbox/…): their errors and bodies.

def control_error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status)


async def json_object(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object (an empty body is {}); None when it is not one."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def pydantic_message(error: Any) -> str:
    """One validation error as "field: message"."""
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
