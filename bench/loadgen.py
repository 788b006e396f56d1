"""A small HTTP/1.1 keep-alive load generator (asyncio + raw sockets) for the benchmarks.

Python HTTP clients cost more per request than the servers we measure; this one only writes
prepared bytes and reads Content-Length framed answers, so the server stays the bottleneck.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
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


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _run(host: str, port: int, make_request: Callable[[int], bytes], total: int, connections: int,
               rate: float | None) -> LoadResult:
    counter = iter(range(total))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in counter:
                if rate:  # open-loop pacing: request i leaves at start + i/rate
                    delay = start + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                sent = time.perf_counter()
                writer.write(make_request(index))
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return LoadResult(len(latencies), elapsed, latencies, errors, statuses)


def run_load(host: str, port: int, make_request: Callable[[int], bytes], *, total: int, connections: int = 32,
             rate: float | None = None) -> LoadResult:
    try:
        import uvloop

        return uvloop.run(_run(host, port, make_request, total, connections, rate))
    except ImportError:
        return asyncio.run(_run(host, port, make_request, total, connections, rate))


def median(values: list[float]) -> float:
    return statistics.median(values)
