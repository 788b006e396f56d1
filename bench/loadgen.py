"""A small HTTP/1.1 keep-alive load generator (asyncio protocols over raw sockets) for the benchmarks.

It shares the machine with the server it measures, so every microsecond it spends is taken from
the server: the requests are built before the clock starts, and each connection is a bare
protocol that writes the next request's bytes and reads Content-Length framed answers (asyncio's
streams cost several times more per request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    errors: int
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def summary(self) -> str:
        return (f"{self.rate:,.0f} req/s, p50 {self.percentile(50):.2f} ms, p99 {self.percentile(99):.2f} ms, "
                f"{self.errors} errors, statuses {self.statuses}")


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class _Client(asyncio.Protocol):
    """One keep-alive connection: sends the next request once the previous answer is complete."""

    def __init__(self, run: _Run):
        self.run = run
        self.buffer = b""
        self.sent = 0.0
        self.waiting = False  # a request is out and its answer not complete
        self.finished = False  # no requests left for it
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send_next()

    def send_next(self) -> None:
        request = next(self.run.requests, None)
        if request is None:
            self.finished = True
            self.transport.close()
            return
        self.sent = time.perf_counter()
        self.waiting = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].lower()
        length = _content_length(head)
        if length is None:  # chunked or close-delimited: the servers we measure never answer so
            self.transport.close()  # counted as an error when the connection is lost
            return
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return
        self.waiting = False
        self.run.answered(int(head[9:12]), (time.perf_counter() - self.sent) * 1000)
        self.buffer = self.buffer[end:]
        if b"\r\nconnection: close" in head:
            self.transport.close()  # the server ends this connection: carry on with a new one
        else:
            self.send_next()

    def connection_lost(self, exc) -> None:
        self.run.lost(self)


def _content_length(head: bytes) -> int | None:
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return None
    line_end = head.find(b"\r\n", at + 2)
    return int(head[at + 17:line_end if line_end > 0 else len(head)])


class _Run:
    def __init__(self, host: str, port: int, requests: Sequence[bytes]):
        self.host, self.port = host, port
        self.requests = iter(requests)
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.open = 0
        self.done = asyncio.get_running_loop().create_future()

    async def connect(self) -> None:
        self.open += 1
        try:
            await asyncio.get_running_loop().create_connection(lambda: _Client(self), self.host, self.port)
        except OSError:
            self.open -= 1
            raise

    def answered(self, status: int, latency_ms: float) -> None:
        self.latencies.append(latency_ms)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def lost(self, client: _Client) -> None:
        self.open -= 1
        if client.waiting:  # dropped mid-request, or answered in a way we cannot read: an error
            self.errors += 1
        if not client.finished:
            asyncio.ensure_future(self.reconnect())
        elif self.open == 0 and not self.done.done():
            self.done.set_result(None)

    async def reconnect(self) -> None:
        try:
            await self.connect()
        except OSError:  # the server is gone: the run ends with what was measured, and says so
            self.errors += 1
            if self.open == 0 and not self.done.done():
                self.done.set_result(None)


async def _run(host: str, port: int, requests: Sequence[bytes], connections: int) -> LoadResult:
    run = _Run(host, port, requests)
    start = time.perf_counter()
    for _ in range(connections):
        await run.connect()
    await run.done
    elapsed = time.perf_counter() - start
    return LoadResult(len(run.latencies), elapsed, run.latencies, run.errors, run.statuses)


def run_load(host: str, port: int, requests: Sequence[bytes], *, connections: int = 32) -> LoadResult:
    """Send `requests` (complete HTTP/1.1 requests) over `connections` keep-alive connections."""
    try:
        import uvloop

        return uvloop.run(_run(host, port, requests, connections))
    except ImportError:
        return asyncio.run(_run(host, port, requests, connections))
