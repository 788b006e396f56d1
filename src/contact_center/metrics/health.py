"""GET /healthz: the database, the job queue and Redis (when configured), each checked on its own.

Each part answers `ok` or `error` with a short reason and how long it took; the whole is 200 when
every part is ok, 503 otherwise, so a load balancer and the on-call engineer read the same answer.
The checks run side by side with a deadline: a part that hangs is reported, not waited for.

The queue is ok when its storage answers. Consumers (`serve`'s and each `contact-center worker`'s)
leave a heartbeat in the queue's storage when they start and every minute after; a heartbeat
older than HEARTBEAT_STALE_SECONDS means no consumer is running any more (nothing is sent), and
that is an error too. A queue no consumer ever beat on (tests' in-memory queue) has none to judge.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from huey import Huey
from sqlalchemy import text

from contact_center.db import READ_ONLY
from contact_center.logs import redact
from contact_center.runtime import Runtime

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 3.0
HEARTBEAT_KEY = "contact-center:consumer-heartbeat"
HEARTBEAT_STALE_SECONDS = 180.0  # three missed beats of a minute
_checks = ThreadPoolExecutor(max_workers=6, thread_name_prefix="healthz")


def beat(huey: Huey) -> None:
    """A consumer is alive: the time, and which process, in the queue's storage."""
    huey.put(HEARTBEAT_KEY, {"at": time.time(), "host": socket.gethostname(), "pid": os.getpid()})


@dataclass
class Part:
    status: str = "ok"
    reason: str | None = None
    latency_ms: float = 0.0
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        shown = {"status": self.status, "latency_ms": round(self.latency_ms, 2), **self.details}
        if self.reason:
            shown["reason"] = self.reason
        return shown


def _failure(exc: BaseException) -> str:
    """What went wrong, short, without a secret (a URL's password, a token) in it."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact(f"{exc.__class__.__name__}: {first_line}"[:200]) if first_line else exc.__class__.__name__


def check_database(runtime: Runtime) -> Part:
    with runtime.engine.connect().execution_options(**READ_ONLY) as connection:
        connection.execute(text("SELECT 1"))
    return Part()


def check_queue(runtime: Runtime) -> Part:
    jobs = runtime.jobs
    pending = jobs.huey.pending_count() + (jobs.urgent.pending_count() if jobs.urgent is not jobs.huey else 0)
    part = Part(details={"pending_tasks": pending})
    last = jobs.huey.get(HEARTBEAT_KEY, peek=True)
    if last is None:
        part.details["consumer"] = None
        return part
    age = max(0.0, time.time() - last["at"])
    part.details["consumer"] = {"last_heartbeat_seconds_ago": round(age, 1), "host": last["host"], "pid": last["pid"]}
    if age > HEARTBEAT_STALE_SECONDS:
        part.status = "error"
        part.reason = (f"nenhum consumidor de tarefas ativo: o último sinal foi há {age:.0f} s "
                       f"(de {last['host']}, pid {last['pid']}); nada é enviado até um `serve` ou "
                       "`contact-center worker` voltar")
    return part


def redis_check(url: str) -> Callable[[Runtime], Part]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def check_redis(_: Runtime) -> Part:
        client.ping()
        return Part()

    return check_redis


class Health:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.checks: dict[str, Callable[[Runtime], Part]] = {"database": check_database, "queue": check_queue}
        if runtime.settings.redis_url:
            self.checks["redis"] = redis_check(runtime.settings.redis_url)

    def report(self) -> tuple[int, dict]:
        started = time.perf_counter()
        running = {name: _checks.submit(self._timed, check) for name, check in self.checks.items()}
        parts: dict[str, Part] = {}
        for name, future in running.items():
            left = max(0.0, CHECK_TIMEOUT_SECONDS - (time.perf_counter() - started))
            try:
                parts[name] = future.result(timeout=left)
            except FutureTimeout:
                parts[name] = Part("error", f"sem resposta em {CHECK_TIMEOUT_SECONDS:g} s",
                                   (time.perf_counter() - started) * 1000)
        failing = [name for name, part in parts.items() if part.status != "ok"]
        for name in failing:
            log.error("health check: %s: %s", name, parts[name].reason)
        body = {"status": "error" if failing else "ok",
                **{name: part.status for name, part in parts.items()},
                "checks": {name: part.as_dict() for name, part in parts.items()}}
        return (503 if failing else 200), body

    def _timed(self, check: Callable[[Runtime], Part]) -> Part:
        started = time.perf_counter()
        try:
            part = check(self.runtime)
        except Exception as exc:  # the point of a health check is to report, not raise
            part = Part("error", f"sem resposta: {_failure(exc)}")
        part.latency_ms = (time.perf_counter() - started) * 1000
        return part
