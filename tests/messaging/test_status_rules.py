"""Invariant 3: statuses move forward only, whatever order and however often callbacks arrive."""

from __future__ import annotations

import pytest

from contact_center.messaging.models import moves_forward


@pytest.mark.parametrize(
    ("current", "new", "applies"),
    [
        ("queued", "sent", True),
        ("sending", "sent", True),
        ("sent", "delivered", True),
        ("sent", "failed", True),
        ("delivered", "read", True),  # WhatsApp's blue ticks come after delivery
        ("sent", "sent", False),  # a replay changes nothing
        ("delivered", "sent", False),  # a late 2 after a 3
        ("delivered", "failed", False),  # a final state never turns into another
        ("read", "delivered", False),
        ("expired", "delivered", False),
        ("blocked", "sent", False),
        ("received", "delivered", False),  # inbound messages have no delivery states
        ("unknown", "sent", True),  # the provider had it after all
        ("unknown", "delivered", True),
        ("unknown", "failed", True),
        ("sent", "unknown", False),
    ],
)
def test_statuses_only_move_forward(current, new, applies):
    assert moves_forward(current, new) is applies


@pytest.mark.parametrize("new", ["sent", "delivered", "failed", "expired"])
def test_a_failure_we_inferred_gives_way_to_the_provider(new):
    assert moves_forward("failed", new, current_inferred=True)
    assert not moves_forward("failed", new, current_inferred=False)
