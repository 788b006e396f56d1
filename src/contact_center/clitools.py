"""What every CLI command shares: settings, an open database, one transaction per command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from sqlalchemy.orm import Session

from contact_center.db import transaction
from contact_center.settings import get_settings

console = Console()
err_console = Console(stderr=True)


@contextmanager
def command_session() -> Iterator[Session]:
    from contact_center.audit.service import Actor, act_as
    from contact_center.runtime import open_database

    _, factory = open_database(get_settings())
    with transaction(factory) as session:
        act_as(session, Actor("cli"))  # whoever runs the command on the server's machine
        yield session
