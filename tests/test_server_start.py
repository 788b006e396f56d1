"""Servers started at once on one database (web processes beside workers, all restarted together):
each finds or creates the sandbox channels, and none fails to start because another got there first."""

from __future__ import annotations

from types import SimpleNamespace

from contact_center.db import make_session_factory
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.server import _sandbox_channel
from tests.conftest import race


def test_servers_started_at_once_share_one_sandbox_channel(own_database):
    runtime = SimpleNamespace(session_factory=make_session_factory(own_database))
    for round_ in range(20):  # a new name each round: every round is a race to create it
        name = f"SMS SANDBOX {round_}"
        found: list[int] = []
        race(lambda: found.append(_sandbox_channel(runtime, name, provider="kolmeya_sandbox",
                                                   credentials={"token": SANDBOX_TOKEN})))
        assert len(found) == 6 and len(set(found)) == 1, found
