"""The report of likely duplicate contacts, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from contact_center.contacts import duplicates
from contact_center.contacts.models import ContactIdentifier
from contact_center.contacts.service import create_contact
from contact_center.errors import InvalidInput


@pytest.fixture
def contacts(db):
    made = {}
    for key, data in {
        "ana": {"mobile": "(11) 90000-0001"},
        "ana_again": {"phone": "5511900000001"},  # the same number, in the other field and form
        "ana_third": {"mobile": "+55 11 90000-0001"},
        "bia": {"mobile": "(11) 90000-0002"},
        "caio": {"phone": "(11) 90000-0003", "mobile": "11 90000-0003"},  # one contact, the number twice
        "davi": {"mobile": "(11) 90000-0004", "email": "davi@example.com"},
        "davi_work": {"mobile": "(11) 90000-0005", "email": "davi@example.com"},
        "eva": {"mobile": "(11) 99876-0006"},
        "eva_whatsapp": {"mobile": "(11) 90000-0007"},
    }.items():
        made[key] = create_contact(db, {"name": key, **data})
    # WhatsApp knows eva_whatsapp by eva's number, in its 12-digit form without the ninth digit.
    db.add(ContactIdentifier(contact_id=made["eva_whatsapp"].id, kind="wa_id", value="551198760006"))
    db.flush()
    return made


def ids(*contacts) -> list[int]:
    return sorted(contact.id for contact in contacts)


def test_the_report_lists_each_group_once_page_by_page(db, contacts, monkeypatch):
    for chunk in ("_GROUP_CHUNK", "_READ_CHUNK"):  # one group, one WhatsApp id per read: every read goes on
        monkeypatch.setattr(duplicates, chunk, 1)
    c = contacts
    seen, after = [], None
    while True:
        page, after = duplicates.report(db, after=after, limit=1)
        seen += [(g.reason, g.value, [i for i, _ in g.contacts]) for g in page]
        if after is None:
            break
    assert seen == [
        ("phone", "+5511900000001", ids(c["ana"], c["ana_again"], c["ana_third"])),
        ("email", "davi@example.com", ids(c["davi"], c["davi_work"])),
        ("wa_id", "551198760006", ids(c["eva"], c["eva_whatsapp"])),
    ]
    whole, end = duplicates.report(db, limit=50)
    assert [g.value for g in whole] == [value for _, value, _ in seen] and end is None
    assert whole[0].contacts[0] == (c["ana"].id, "ana")


def test_merged_contacts_leave_the_report(db, contacts):
    from contact_center.contacts import merge

    merge.merge(db, contacts["davi"].id, contacts["davi_work"].id, actor=None, via="cli")
    assert "email" not in {g.reason for g in duplicates.report(db)[0]}


@pytest.mark.parametrize("after", ["phone", "fax:123", "wa_id:abc", ":"])
def test_a_bad_cursor_is_a_clear_error(db, after):
    with pytest.raises(InvalidInput) as raised:
        duplicates.report(db, after=after)
    assert raised.value.field == "after" and "next_after" in raised.value.message


def test_the_duplicates_endpoint(client, agent_headers):
    for name, mobile in (("Ana", "11 90000-0001"), ("Ana Lima", "5511900000001")):
        client.post("/api/contacts", json={"name": name, "mobile": mobile, "create_anyway": True}, headers=agent_headers)
    page = client.get("/api/contacts/duplicates", headers=agent_headers)
    assert page.status_code == 200, page.text
    [group] = page.json()["groups"]
    assert group["reason"] == "phone" and [m["name"] for m in group["contacts"]] == ["Ana", "Ana Lima"]
    assert page.json()["next_after"] is None
    bad = client.get("/api/contacts/duplicates", params={"limit": 0}, headers=agent_headers)
    assert bad.status_code == 422
