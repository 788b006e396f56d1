"""The inbox tests' team of operators (customers' replies come from tests/conftest.py)."""

from __future__ import annotations

import functools

import pytest

from contact_center.auth import service as auth_service
from contact_center.auth.models import User


@pytest.fixture
def people(db):
    """ana and bruno (agents), sofia (supervisor), root (admin)."""
    made = {}
    for username, name, role in (("ana", "Ana Lima", "agent"), ("bruno", "Bruno Dias", "agent"),
                                 ("sofia", "Sofia Reis", "supervisor"), ("root", "Rita Admin", "admin")):
        made[username] = User(username=username, name=name, role=role, password_hash=_password_hash(), active=True)
        db.add(made[username])
    db.flush()
    return made


@functools.cache
def _password_hash() -> str:
    return auth_service.hash_password("correct horse")  # argon2 is slow on purpose: once per run is enough


