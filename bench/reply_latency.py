"""Customer replies posted at a steady rate, alone and while 1,000-item status callbacks of unknown
ids arrive: the replies' latency in both cases, measured in the same run against one server (one
worker and its webhook writer process, SQLite, as `serve` runs).

    uv run python bench/reply_latency.py [--contacts 20000] [--rate 300] [--seconds 8] [--rounds 3]

Each round runs the replies alone, then again with a status callback of 1,000 ids every
`--status-every` seconds. Latency is counted from the moment each reply was due (so a stalled
server cannot hide its queue). Goal: a reply's latency does not depend on a large status batch
arriving just before it — reply p99 with the status callbacks about what it is without them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import request_bytes  # noqa: E402
from webhook_ingest import SERVER, build_database, start_server  # noqa: E402

PORT = 8773
STATUS_BATCH = 1000


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", PORT))

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:"))
        await self.reader.readexactly(length)
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections handed out one request at a time; a new one when all are busy."""

    def __init__(self):
        self.idle: list[Connection] = []

    async def post(self, request: bytes) -> int:
        if self.idle:
            connection = self.idle.pop()
            try:
                status = await connection.post(request)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed it while idle (its keep-alive timeout): a new one, as a browser does.
                connection.close()
                return await self.post(request)
        else:
            connection = await Connection.open()
            try:
                status = await connection.post(request)
            except Exception:
                connection.close()
                raise
        self.idle.append(connection)
        return status

    def close(self) -> None:
        for connection in self.idle:
            connection.close()


async def replies_at_rate(requests: list[bytes], rate: float) -> tuple[list[float], int]:
    """Post each request at its due time; latencies (ms) from the due time, and the errors."""
    pool, latencies, errors = Pool(), [], 0
    start = time.perf_counter()

    async def one(index: int, request: bytes) -> None:
        nonlocal errors
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            status = await pool.post(request)
        except Exception as exc:
            status = 0
            print(f"reply {index}: {type(exc).__name__}: {exc}", file=sys.stderr)
        if status != 200:
            errors += 1
        latencies.append((time.perf_counter() - due) * 1000)

    await asyncio.gather(*(one(index, request) for index, request in enumerate(requests)))
    pool.close()
    return latencies, errors


async def _status_batches(path: str, every: float, seconds: float, first_id: int) -> list[float]:
    # Built before the clock starts: the sender must not take time from anything measured.
    bodies = []
    for number in range(first_id, first_id + int(seconds / every) + 1):
        items = [{"id": f"kol-bench-{number}-{n}", "reference": None, "status": "entregue", "status_code": 3}
                 for n in range(STATUS_BATCH)]
        body = json.dumps({"id": f"request-{number}", "reference": None, "messages": items}).encode()
        bodies.append(request_bytes("127.0.0.1", PORT, path, body))
    connection, latencies = await Connection.open(), []
    until = time.perf_counter() + seconds
    for request in bodies:
        if time.perf_counter() >= until:
            break
        sent = time.perf_counter()
        status = await connection.post(request)
        assert status == 200, f"status callback answered {status}"
        latencies.append((time.perf_counter() - sent) * 1000)
        await asyncio.sleep(max(0.0, sent + every - time.perf_counter()))
    connection.close()
    return latencies


def status_batches(path: str, every: float, seconds: float, first_id: int, out) -> None:
    """A 1,000-item status callback of ids nobody knows every `every` seconds, for `seconds`; in a
    process of its own, so that building and posting them takes nothing from the replies' client."""
    out.send(asyncio.run(_status_batches(path, every, seconds, first_id)))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=300, help="replies per second")
    parser.add_argument("--seconds", type=float, default=8, help="per run")
    parser.add_argument("--status-every", type=float, default=0.5, help="seconds between status callbacks")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        secret, numbers = build_database(data_dir, options.contacts)
        (data_dir / "ours.py").write_text(SERVER)
        env = {**os.environ, "PYTHONPATH": str(data_dir), "CONTACT_CENTER_DATA_DIR": str(data_dir)}
        reply_path, status_path = f"/kolmeya/webhook/reply?token={secret}", f"/kolmeya/webhook/status?token={secret}"
        per_run = int(options.rate * options.seconds)
        counter = iter(range(10**9))

        def replies(count: int) -> list[bytes]:
            made = []
            for _ in range(count):
                index = next(counter)
                at = f"2026-11-24 {index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}"
                body = json.dumps({"phone": numbers[index % len(numbers)], "message": f"Resposta {index}",
                                   "data": at})
                made.append(request_bytes("127.0.0.1", PORT, reply_path, body.encode()))
            return made

        def with_statuses(requests: list[bytes], first_id: int):
            receiver, sender = multiprocessing.Pipe(duplex=False)
            statuses = multiprocessing.Process(target=status_batches, args=(
                status_path, options.status_every, options.seconds, first_id, sender))
            statuses.start()
            latencies, errors = asyncio.run(replies_at_rate(requests, options.rate))
            batches = receiver.recv()
            statuses.join()
            return latencies, errors, batches

        server = start_server(["ours:app"], PORT, env)
        alone_runs, loaded_runs, batch_latencies = [], [], []
        try:
            asyncio.run(replies_at_rate(replies(int(options.rate)), options.rate))  # warm-up
            for round_ in range(options.rounds):
                alone_runs.append(asyncio.run(replies_at_rate(replies(per_run), options.rate)))
                latencies, errors, batches = with_statuses(replies(per_run), round_ * 1000)
                loaded_runs.append((latencies, errors))
                batch_latencies += batches
        finally:
            server.terminate()
            server.wait()

    print(f"{options.rate:.0f} replies/s for {options.seconds:g} s a run; status callbacks of {STATUS_BATCH:,} "
          f"unknown ids every {options.status_every:g} s in the loaded runs")
    for index, ((alone, alone_errors), (loaded, loaded_errors)) in enumerate(zip(alone_runs, loaded_runs), 1):
        print(f"round {index}: alone p50 {percentile(alone, 50):.1f} ms, p99 {percentile(alone, 99):.1f} ms "
              f"({alone_errors} errors); with status callbacks p50 {percentile(loaded, 50):.1f} ms, "
              f"p99 {percentile(loaded, 99):.1f} ms ({loaded_errors} errors)")
    alone_p99 = statistics.median(percentile(run, 99) for run, _ in alone_runs)
    loaded_p99 = statistics.median(percentile(run, 99) for run, _ in loaded_runs)
    print("\n== reply_latency summary ==")
    print(f"reply p99 alone                 {alone_p99:7.1f} ms  (median of the rounds)")
    print(f"reply p99 with status callbacks {loaded_p99:7.1f} ms  ({loaded_p99 / alone_p99:.1f}x)")
    print(f"status callback of 1,000        p50 {percentile(batch_latencies, 50):.0f} ms, "
          f"p99 {percentile(batch_latencies, 99):.0f} ms ({len(batch_latencies)} callbacks)")


if __name__ == "__main__":
    main()
