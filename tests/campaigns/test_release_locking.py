"""On PostgreSQL, a campaign's release (scheduled → queued) and a worker's claim (queued →
sending) skip the message rows another transaction holds instead of waiting for them: two pumps
at once release different messages, and a claim leaves what another claim holds. Waiting for
them is how a claim and a release once deadlocked in the scale-out test, losing a batch's job
until the sweeper came. (Both still wait their turn for the report's counters, which every status
change of a campaign's day updates: tests/reports.)"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text, update

from contact_center.campaigns.models import Campaign
from contact_center.channels.service import create_channel
from contact_center.db import make_session_factory, transaction
from contact_center.messaging import service as messaging
from contact_center.messaging.models import Message

PG_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]


def _campaign_messages(factory, count: int) -> tuple[int, list[int]]:
    with transaction(factory) as session:
        channel = create_channel(session, name="SMS", provider="kolmeya_sandbox", credentials={"token": "t"},
                                 settings={"base_url": "http://127.0.0.1:9/"})
        campaign = Campaign(name="Cobrança", channel_id=channel.id, body_template="Oi")
        session.add(campaign)
        session.flush()
        ids = [messaging.queue_outbound(session, channel=channel, phone=f"11 90000-{n:04d}", body="Oi",
                                        origin="campaign").id for n in range(count)]
        session.execute(update(Message).where(Message.id.in_(ids))
                        .values(status="scheduled", campaign_id=campaign.id, queued_at=None))
        return campaign.id, sorted(ids)


def _in_thread(work) -> tuple[threading.Thread, dict]:
    """Run work() on its own connection; its answer, or what it raised, lands in the dict."""
    answer: dict = {}

    def run() -> None:
        try:
            answer["value"] = work()
        except BaseException as exc:  # surfaced by the test
            answer["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answer


def _wait_until_blocked(factory, thread: threading.Thread) -> None:
    """Until another session waits for a lock (the first transaction's): the second has picked its
    rows and gone as far as it can, so committing the first now tests what it picked."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and thread.is_alive():
        with factory() as session:
            if session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND wait_event_type = 'Lock'")):
                return
        time.sleep(0.05)
    raise AssertionError("the second transaction neither waited for the first one nor finished")


def _result(thread: threading.Thread, answer: dict):
    thread.join(timeout=10)
    assert not thread.is_alive(), "the second transaction never finished"
    if "error" in answer:
        raise answer["error"]
    return answer["value"]


@pytest.mark.parametrize("own_database", PG_ONLY, indirect=True)
def test_two_pumps_at_once_release_different_messages_without_waiting(own_database):
    factory = make_session_factory(own_database)
    campaign_id, ids = _campaign_messages(factory, 20)
    first = factory()
    try:
        held = messaging.release_scheduled(first, campaign_id, 10)  # not committed yet: its rows stay locked

        def second_pump() -> list[int]:
            with transaction(factory) as session:
                return messaging.release_scheduled(session, campaign_id, 10)

        thread, answer = _in_thread(second_pump)
        _wait_until_blocked(factory, thread)  # on the report's counters, or (before) on the first pump's rows
        first.commit()
        # Waiting for the first pump's rows, it would have found them released when they came free,
        # and released nothing itself.
        assert sorted(held) == ids[:10] and sorted(_result(thread, answer)) == ids[10:]
    finally:
        first.close()


@pytest.mark.parametrize("own_database", PG_ONLY, indirect=True)
def test_a_claim_skips_the_messages_another_claim_holds(own_database):
    factory = make_session_factory(own_database)
    campaign_id, ids = _campaign_messages(factory, 10)
    with transaction(factory) as session:
        assert sorted(messaging.release_scheduled(session, campaign_id, 10)) == ids
    first = factory()
    try:
        claimed = messaging.claim_for_dispatch(first, ids[:6])  # held, not committed

        def second_claim() -> list[int]:
            with transaction(factory) as session:
                return [row.id for row in messaging.claim_for_dispatch(session, ids)]

        thread, answer = _in_thread(second_claim)
        _wait_until_blocked(factory, thread)
        first.commit()
        assert [row.id for row in claimed] == ids[:6] and _result(thread, answer) == ids[6:]
    finally:
        first.close()
    with factory() as session:
        assert {m.status for m in session.query(Message).where(Message.id.in_(ids))} == {"sending"}
