"""How dispatch jobs are queued."""

from __future__ import annotations

from types import SimpleNamespace

from contact_center import jobs
from contact_center.messaging import dispatch as dispatch_module
from contact_center.runtime import current_or_none, install


def test_messages_to_retry_after_the_same_delay_go_back_as_one_job(monkeypatch):
    scheduled = []
    fake_jobs = SimpleNamespace(dispatch_later=lambda ids, delay: scheduled.append((ids, delay)))
    monkeypatch.setattr(dispatch_module, "dispatch", lambda *_: [(1, 30.0), (2, 30.0), (3, 30.0), (4, 120.0)])
    previous = current_or_none()
    install(SimpleNamespace(session_factory=None, settings=None, jobs=fake_jobs))
    try:
        jobs._dispatch_messages([1, 2, 3, 4])
    finally:
        install(previous)
    assert sorted(scheduled) == [([1, 2, 3], 30.0), ([4], 120.0)]
