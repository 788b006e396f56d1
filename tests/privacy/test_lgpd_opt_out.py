"""An opt-out outlives the erasure of the person who asked for it: the number stays on Kolmeya's
blacklist (the erasure never asks for it to be removed, and pushes it when that had not happened
yet), the blanked contact keeps its opt-out flags, a keyed hash of the number blocks sends to it
when it comes back, and none of our tables keeps the phone for it (personal_data.py says why)."""

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
    # The erasure adds the number again (its first push might not have happened): never a removal.
    assert calls(kolmeya, "/blacklist/destroy") == 0 and calls(kolmeya, "/blacklist/store") == 2
    assert where(maria.needles, text_everywhere(db)) == []  # the phone is in none of our tables
    db.expire_all()
    tombstone = db.get(Contact, maria.contact_id)
    assert (tombstone.opt_out_sms, tombstone.opt_out_whatsapp) == (True, True)
    assert (tombstone.phone_e164, tombstone.mobile_e164) == (None, None)

    # Reversing the blanked contact's opt-out reaches nothing: it has no number to take off the list.
    answer = client.patch(f"/api/contacts/{maria.contact_id}", json={"opt_out_sms": False}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert kolmeya.ledger()["blacklist"] == [digits] and calls(kolmeya, "/blacklist/destroy") == 0


def sent_to(sandbox, e164: str) -> int:
    """Messages Kolmeya holds for this number (its ledger, not our tables)."""
    digits = e164.lstrip("+")
    return sum(1 for message in sandbox.ledger()["messages"] if str(message["phone"]).endswith(digits[2:]))


def test_an_erased_contacts_opt_out_blocks_its_number_when_it_comes_back(client, db, admin, customers, kolmeya):
    maria, bruno = customers["maria"], customers["bruno"]
    answer = client.patch(f"/api/contacts/{maria.contact_id}", json={"opt_out_sms": True}, headers=admin)
    assert answer.status_code == 200, answer.text
    answer = client.post(f"/api/contacts/{maria.contact_id}/erase", headers=admin,
                         json={"reason": "Pedido da titular, protocolo 2026-0102", "requested_by": "A titular"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["erased"]["opted_out_numbers_kept"] >= 1
    assert where(maria.needles, text_everywhere(db)) == []  # the hashes name nobody
    before = sent_to(kolmeya, maria.e164)

    # The number comes back as a new contact (an import, a sync), written another way.
    again = client.post("/api/contacts", json={"name": "M. A. Souza", "mobile": "+55 11 90000-0101"}, headers=admin)
    assert again.status_code == 201, again.text
    assert again.json()["opt_out_sms"] is False  # the new contact knows nothing of the old flags...
    refused = client.post("/api/sms", json={"contact_id": again.json()["id"], "body": "Oi, tudo bem?"}, headers=admin)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "opted_out", refused.text
    assert f"Contato apagado #{maria.contact_id}" in refused.json()["error"]["message"]
    assert f"clear the opt-out on contact {maria.contact_id}" in refused.json()["error"]["message"]  # where to lift it
    refused = client.post("/api/sms", json={"to": "11900000101", "body": "Oi, tudo bem?"}, headers=admin)
    assert refused.status_code == 409, refused.text  # ...and neither does a send to the bare number

    # A campaign's audience: the number is counted as opted out, stored blocked, never sent.
    audience = f"phone,name\n(11) 90000-0101,Maria\n{bruno.mobile},Bruno\n"
    plan = client.post("/api/sms/bulk", json={"csv": audience, "body": "Olá {{ contact.name }}"}, headers=admin)
    assert plan.status_code == 200, plan.text
    assert (plan.json()["sendable"], plan.json()["opted_out"]) == (1, 1)
    assert plan.json()["rejected"] == []
    sent = client.post("/api/sms/bulk", json={"csv": audience, "body": "Olá {{ contact.name }}", "confirm": True},
                       headers=admin)
    assert sent.status_code == 200, sent.text
    statuses = {m["phone_e164"]: (m["status"], m["status_reason"]) for m in client.get(
        "/api/messages", params={"campaign_id": sent.json()["campaign_id"]}, headers=admin).json()}
    assert statuses[maria.e164] == ("blocked", "not sent: the contact opted out of SMS")
    assert statuses[bruno.e164][0] != "blocked"
    assert sent_to(kolmeya, maria.e164) == before and sent_to(kolmeya, bruno.e164) >= 1

    # Lifting the tombstone's opt-out (who asked is on the audit log) lets us write to the number
    # again; Kolmeya still refuses it from its blacklist, which only its panel can lift now.
    answer = client.patch(f"/api/contacts/{maria.contact_id}", json={"opt_out_sms": False}, headers=admin)
    assert answer.status_code == 200, answer.text
    stores = calls(kolmeya, "/sms/store")
    sent = client.post("/api/sms", json={"contact_id": again.json()["id"], "body": "Oi, tudo bem?"}, headers=admin)
    assert sent.status_code == 202, sent.text
    assert calls(kolmeya, "/sms/store") == stores + 1


def test_an_opt_out_not_yet_on_the_blacklist_is_pushed_by_the_erasure(client, db, admin, customers, kolmeya):
    maria = customers["maria"]
    digits = maria.e164.lstrip("+")
    kolmeya.configure(fail_next=[503], fail_only=["/blacklist/store"])  # the opt-out's push fails; retried later
    answer = client.patch(f"/api/contacts/{maria.contact_id}", json={"opt_out_sms": True}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert kolmeya.ledger()["blacklist"] == []

    # Erased before the retry: the contact holds no number any more, the erasure pushes it itself.
    answer = client.post(f"/api/contacts/{maria.contact_id}/erase", headers=admin,
                         json={"reason": "Pedido da titular, protocolo 2026-0103", "requested_by": "A titular"})
    assert answer.status_code == 200, answer.text
    assert kolmeya.ledger()["blacklist"] == [digits]
    assert where(maria.needles, text_everywhere(db)) == []


def test_a_marketing_stop_blocks_only_marketing_templates_to_the_erased_number(db):
    from contact_center import phones
    from contact_center.channels.kinds import MARKETING_STOPPED, SMS, WHATSAPP
    from contact_center.privacy import erased_numbers

    tombstone = Contact(name="Contato apagado", opt_out_sms=False, opt_out_whatsapp=False, opt_out_marketing=True)
    db.add(tombstone)
    db.flush()
    key = phones.match_key("+55 11 90000-0301")
    assert erased_numbers.record(db, tombstone, [key]) == 1
    erased = erased_numbers.look_up(db, [key, phones.match_key("+55 11 90000-0302")])
    marketing = erased.blocks(key, WHATSAPP, {"category": "MARKETING", "name": "oferta"})
    assert marketing is not None and marketing.reason == MARKETING_STOPPED and not marketing.opted_out_of_kind
    assert erased.blocks(key, WHATSAPP, {"category": "UTILITY", "name": "fatura"}) is None
    assert erased.blocks(key, WHATSAPP, None) is None and erased.blocks(key, SMS, None) is None
    assert erased.blocks(phones.match_key("+55 11 90000-0302"), WHATSAPP, {"category": "MARKETING"}) is None
    # A contact who had opted out of nothing leaves no hash behind.
    plain = Contact(name="Sem opt-out", opt_out_sms=False, opt_out_whatsapp=False, opt_out_marketing=False)
    db.add(plain)
    db.flush()
    assert erased_numbers.record(db, plain, [phones.match_key("+55 11 90000-0303")]) == 0
