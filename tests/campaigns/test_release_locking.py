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
from sqlalchemy import update

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
    """Run work() on its own connection; the answer and how long it took land in the dict."""
    answer: dict = {}

    def run() -> None:
        started = time.monotonic()
        answer["value"] = work()
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answer


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
        time.sleep(0.5)  # it has picked its rows by now
        first.commit()
        thread.join(timeout=10)
        # Waiting for the first pump's rows, it would have found them released when they came free,
        # and released nothing itself.
        assert sorted(held) == ids[:10] and sorted(answer["value"]) == ids[10:]
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
        time.sleep(0.5)
        first.commit()
        thread.join(timeout=10)
        assert [row.id for row in claimed] == ids[:6] and answer["value"] == ids[6:]
    finally:
        first.close()
    with factory() as session:
        assert {m.status for m in session.query(Message).where(Message.id.in_(ids))} == {"sending"}
