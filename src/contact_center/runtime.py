"""A process's wiring: settings, database, job queue. `serve`, `worker`, CLI commands and tests
build one; job bodies find it with current()."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from contact_center.db import make_engine, make_session_factory
from contact_center.events import EventBus, InProcessBus, make_bus
from contact_center.jobs import Jobs, make_jobs
from contact_center.logs import configure_logging, register_secret
from contact_center.messaging.rate_limit import Limiter, LocalLimiter, make_limiter
from contact_center.migrations import upgrade
from contact_center.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    jobs: Jobs
    events: EventBus = field(default_factory=InProcessBus)  # Redis when settings.redis_url is set
    limiter: Limiter = field(default_factory=LocalLimiter)  # channels' rate limits; Redis's when configured


_current: Runtime | None = None


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no runtime: start the process through `contact-center serve` or `worker`")
    return _current


def current_or_none() -> Runtime | None:
    return _current


def current_settings() -> Settings:
    """The running process's settings, or the environment's where no runtime is installed (a bare
    CLI command, a test)."""
    return _current.settings if _current is not None else get_settings()


def install(runtime: Runtime) -> Runtime:
    global _current
    _current = runtime
    return runtime


def open_database(settings: Settings, *, migrate: bool = True) -> tuple[Engine, sessionmaker[Session]]:
    """Logging, secrets for the log filter, and the database; `migrate=False` for a helper process
    of one that has migrated already (the webhook writer)."""
    import contact_center.models  # noqa: F401  every table, so the ORM's foreign keys resolve without Alembic

    configure_logging(settings.log_level, settings.log_format)
    for secret in (settings.secret_key, settings.kolmeya_token, settings.metrics_token):
        register_secret(secret.get_secret_value())
    engine = make_engine(settings.effective_database_url)
    if migrate:
        upgrade(engine)
    return engine, make_session_factory(engine)


def build_runtime(settings: Settings) -> Runtime:
    engine, factory = open_database(settings)
    return install(Runtime(settings=settings, engine=engine, session_factory=factory,
                           jobs=make_jobs(settings), events=make_bus(settings.redis_url),
                           limiter=make_limiter(settings)))


def freeze_startup_heap() -> None:
    """Once a long-running process is built (modules, routes, compiled SQL, templates), move all of
    it out of the cyclic collector's reach (gc.freeze): a full collection otherwise walks every one
    of those objects and stalls whichever request or job set it off (40–70 ms on the contacts list
    at a million contacts: bench/contact_fields.py measures it). Requests' own garbage is still
    collected as before."""
    gc.collect()
    gc.freeze()
