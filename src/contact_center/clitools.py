"""What every CLI command shares: settings, an open database, one transaction per command."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from sqlalchemy.orm import Session

from contact_center.db import transaction
from contact_center.settings import get_settings
from contact_center.translations import Words

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


def language() -> str | None:
    """The language of the person at the terminal, from the locale as gettext reads it (the first
    of LANGUAGE, LC_ALL, LC_MESSAGES and LANG that is set): "pt-BR" or "en"; None for a locale that
    names neither (C, POSIX: a script's), which reads the refusals as the code writes them."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").split(":")[0].strip().lower()
        if value:
            return "pt-BR" if value.startswith("pt") else "en" if value.startswith("en") else None
    return None


def said(words: Words) -> str:
    """A refusal (a domain error, its Words) in the terminal's language."""
    return words.text(language())
