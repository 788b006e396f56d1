"""An opt-out outlives the erasure of the person who asked for it: the number stays on Kolmeya's
blacklist (the erasure never asks for it to be removed), the blanked contact keeps its opt-out
flags, and none of our tables keeps the phone for it (personal_data.py says why this is enough)."""

from __future__ import annotations

from contact_center.contacts.models import Contact
from tests.privacy.test_lgpd_erasure import text_everywhere, where


def calls(sandbox, path: str) -> int:
    return sum(1 for call in sandbox.ledger()["api_calls"] if call["path"].endswith(path))


def test_an_sms_opt_out_stays_on_the_blacklist_and_no_table_keeps_the_phone(client, db, admin, customers, kolmeya):
    maria = customers["maria"]
    digits = maria.e164.lstrip("+")
    answer = client.patch(f"/api/contacts/{maria.contact_id}", json={"opt_out_sms": True, "opt_out_whatsapp": True},
                          headers=admin)
    assert answer.status_code == 200, answer.text
    assert kolmeya.ledger()["blacklist"] == [digits] and calls(kolmeya, "/blacklist/store") == 1
    assert where([maria.e164], text_everywhere(db))  # the search finds the phone while it is there

    answer = client.post(f"/api/contacts/{maria.contact_id}/erase", headers=admin,
                         json={"reason": "Pedido da titular, protocolo 2026-0101", "requested_by": "A titular"})
    assert answer.status_code == 200, answer.text

    assert kolmeya.ledger()["blacklist"] == [digits]  # still refused by Kolmeya, from any system
    assert calls(kolmeya, "/blacklist/destroy") == 0 and calls(kolmeya, "/blacklist/store") == 1
    assert where(maria.needles, text_everywhere(db)) == []  # the phone is in none of our tables
    db.expire_all()
    tombstone = db.get(Contact, maria.contact_id)
    assert (tombstone.opt_out_sms, tombstone.opt_out_whatsapp) == (True, True)
    assert (tombstone.phone_e164, tombstone.mobile_e164) == (None, None)

    # Reversing the blanked contact's opt-out reaches nothing: it has no number to take off the list.
    answer = client.patch(f"/api/contacts/{maria.contact_id}", json={"opt_out_sms": False}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert kolmeya.ledger()["blacklist"] == [digits] and calls(kolmeya, "/blacklist/destroy") == 0
