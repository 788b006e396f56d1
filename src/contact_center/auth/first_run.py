"""The first run's admin password lives in a file in the data directory that only the owner can
read, never on the console (whose output ends up in terminals' scrollback, service logs and CI
output). The file goes away when that password is changed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.orm import Session

from contact_center.unit_of_work import after_commit

log = logging.getLogger(__name__)
USERNAME = "admin"
FILE_NAME = "initial-admin-password"


def password_file(data_dir: Path) -> Path:
    return Path(data_dir).absolute() / FILE_NAME


def write_password(data_dir: Path, password: str) -> Path:
    """Write the first admin's password to its file (mode 0600); returns where."""
    path = password_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Called only on an empty database: a file already there is left from an earlier one.
    path.unlink(missing_ok=True)
    # O_EXCL: never write through a file or link that appeared in between.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # whatever the umask
        file.write(password + "\n")
    return path


def forget_password(session: Session, data_dir: Path) -> None:
    """Delete the file once the transaction changing the admin's password commits (before that, the
    password in it is still the one that works)."""
    path = password_file(data_dir)

    def remove() -> None:
        if path.exists():
            path.unlink(missing_ok=True)
            log.info("first-run admin password changed: deleted %s", path)

    after_commit(session, remove)
