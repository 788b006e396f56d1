"""Invariant 4: an inbound number reaches the right contact whatever its written form, never the wrong one."""

from __future__ import annotations

import logging

import pytest

from contact_center.contacts.service import create_contact, find_by_phone

MARIA_FORMS = [
    "+55 48 99191-0234",
    "5548991910234",
    "+5548991910234",
    "(48) 99191-0234",
    "048 99191-0234",
    "0XX48991910234",
    "554891910234",  # WhatsApp's 12-digit form, without the ninth digit
]


@pytest.mark.parametrize("written", MARIA_FORMS)
def test_every_written_form_finds_the_contact(db, written):
    maria = create_contact(db, {"name": "Maria", "mobile": "(48) 99191-0234"})
    create_contact(db, {"name": "Landline", "phone": "(48) 3333-4444"})
    assert find_by_phone(db, written).id == maria.id


def test_landline_never_matches_a_mobile(db):
    create_contact(db, {"name": "Mobile", "mobile": "(48) 93333-4444"})
    assert find_by_phone(db, "(48) 3333-4444") is None
    office = create_contact(db, {"name": "Office", "phone": "(48) 3333-4444"})
    assert find_by_phone(db, "554833334444").id == office.id


def test_exact_form_wins_over_ninth_digit_variant(db):
    old = create_contact(db, {"name": "Old form", "mobile": "554891910234"})
    new = create_contact(db, {"name": "New form", "mobile": "5548991910234"})
    assert find_by_phone(db, "+55 48 99191-0234").id == new.id
    assert find_by_phone(db, "554891910234").id == old.id


def test_several_matches_pick_the_oldest_and_warn(db, caplog):
    first = create_contact(db, {"name": "First", "mobile": "11 90000-0001"})
    create_contact(db, {"name": "Second", "phone": "+55 11 90000-0001"})
    with caplog.at_level(logging.WARNING):
        assert find_by_phone(db, "11900000001").id == first.id
    assert "matches 2 contacts" in caplog.text


def test_phone_field_and_mobile_field_both_match(db):
    contact = create_contact(db, {"name": "Phone only", "phone": "11 90000-0002"})
    assert find_by_phone(db, "+5511900000002").id == contact.id


def test_unknown_number_is_none(db):
    create_contact(db, {"name": "Maria", "mobile": "(48) 99191-0234"})
    assert find_by_phone(db, "(48) 99191-0235") is None
