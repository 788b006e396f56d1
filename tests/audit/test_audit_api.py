"""Reading the audit log: GET /api/audit filters by who, what, when and on what, newest first, a
keyset page at a time; the CSV exports the filter and is itself recorded; the /audit page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from contact_center.audit.models import AuditEntry
from contact_center.audit.service import record


@pytest.fixture
def people(make_user):
    admin, admin_token = make_user("root", "admin")
    sofia, sofia_token = make_user("sofia", "supervisor")
    _, ana_token = make_user("ana", "agent")
    return {"admin": admin, "sofia": sofia, "root_h": {"Authorization": f"Bearer {admin_token}"},
            "sofia_h": {"Authorization": f"Bearer {sofia_token}"}, "ana_h": {"Authorization": f"Bearer {ana_token}"}}


@pytest.fixture
def log(db, people):
    """Entries on three days: two by root on contacts, one by sofia on a channel, one by the system."""
    # Two days back, so the entries are older than the users' own (written now), as real ones are:
    # an afternoon "today" was still to come in the hours after midnight UTC.
    today = (datetime.now(UTC) - timedelta(days=2)).replace(hour=15, minute=0, second=0, microsecond=0)
    rows = [(people["admin"].id, "contact.update", "contact", 7, today - timedelta(days=2)),
            (people["sofia"].id, "channel.update", "channel", 1, today - timedelta(days=1)),
            (people["admin"].id, "contact.update", "contact", 8, today),
            (None, "campaign.complete", "campaign", 3, today)]
    for actor_id, action, subject_type, subject_id, at in rows:
        record(db, action=action, subject_type=subject_type, subject_id=subject_id, actor_id=actor_id,
               fields=["name"]).at = at
    db.commit()
    return today


def ids(response) -> list[tuple[str, int]]:
    assert response.status_code == 200, response.text
    return [(e["action"], e["subject_id"]) for e in response.json()["items"]
            if e["action"] not in ("user.create", "token.create")]


def test_filters_by_who_what_when_and_subject_newest_first(client, people, log):
    h = people["sofia_h"]
    assert ids(client.get("/api/audit?actor=root", headers=h)) == [("contact.update", 8), ("contact.update", 7)]
    assert ids(client.get("/api/audit?action=channel.update", headers=h)) == [("channel.update", 1)]
    assert ids(client.get("/api/audit?subject_type=contact&subject_id=7", headers=h)) == [("contact.update", 7)]
    assert ids(client.get("/api/audit?actor_kind=system", headers=h)) == [("campaign.complete", 3)]
    day = (log - timedelta(days=1)).astimezone(UTC).date().isoformat()
    assert ids(client.get(f"/api/audit?since={day}&until={day}", headers=h)) == [("channel.update", 1)]
    entry = client.get("/api/audit?actor=sofia&action=channel.update", headers=h).json()["items"][0]
    assert (entry["actor"], entry["actor_kind"]) == ("sofia", "user")
    client.post("/api/tokens", json={"name": "ERP"}, headers=h)  # by sofia's token: the entry names it
    [by_token] = client.get("/api/audit?action=token.create&actor=sofia&actor_kind=token", headers=h).json()["items"]
    assert by_token["actor"] == "sofia (token tests)" and by_token["detail"]["name"] == "ERP"


def test_pages_go_back_by_before_id_until_the_last(client, people, log):
    h = people["root_h"]
    first = client.get("/api/audit?action=contact.update&limit=1", headers=h).json()
    assert [e["subject_id"] for e in first["items"]] == [8]
    second = client.get(f"/api/audit?action=contact.update&limit=1&before_id={first['next_before_id']}",
                        headers=h).json()
    assert [e["subject_id"] for e in second["items"]] == [7]
    last = client.get(f"/api/audit?action=contact.update&limit=1&before_id={second['next_before_id']}",
                      headers=h).json()
    assert last == {"items": [], "next_before_id": None}


@pytest.mark.parametrize("query,field,fragment", [
    ("since=01/12/2026", "since", "use AAAA-MM-DD"),
    ("since=2026-12-05&until=2026-12-01", "until", "anterior"),
    ("actor=ninguem", "actor", "nenhum operador"),
    ("actor_kind=robot", "actor_kind", "tipo de autor desconhecido"),
    ("subject_id=4", "subject_type", "subject_id precisa de subject_type"),
])
def test_a_bad_filter_is_a_clear_422_in_portuguese(client, people, log, query, field, fragment):
    response = client.get(f"/api/audit?{query}", headers=people["root_h"])
    assert response.status_code == 422
    error = response.json()["error"]
    assert fragment in error["message"] and error.get("field") == field


def test_only_supervisors_and_admins_read_it(client, people, log):
    assert client.get("/api/audit", headers=people["ana_h"]).status_code == 403
    assert client.get("/api/audit").status_code == 401
    assert client.get("/api/audit.csv", headers=people["ana_h"]).status_code == 403


def test_the_csv_exports_the_filter_and_the_export_is_recorded(client, db, people, log):
    response = client.get("/api/audit.csv?actor=root&action=contact.update", headers=people["sofia_h"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["action"], r["subject_id"], r["actor"]) for r in rows] == [("contact.update", "8", "root"),
                                                                       ("contact.update", "7", "root")]
    db.expire_all()
    export = db.scalar(select(AuditEntry).where(AuditEntry.action == "audit.export"))
    assert export.actor_id == people["sofia"].id and export.detail == {"filter": {"actor": "root", "action": "contact.update"}}


def test_the_page_lists_filters_and_labels_in_portuguese(client, people, log):
    form = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "sofia", "password": "correct horse", "csrf_token": form})
    page = client.get("/audit?actor=root")
    assert page.status_code == 200
    assert page.text.count('data-action="contact.update"') == 2 and "channel.update" not in page.text.split("<tbody>")[1]
    assert "Contato alterado" in page.text and 'href="/audit"' in page.text and 'id="nav-audit"' in page.text
    assert 'href="/api/audit.csv?actor=root"' in page.text
    bad = client.get("/audit?since=ontem")
    assert bad.status_code == 422 and "data inválida em since" in bad.text
    empty = client.get("/audit?action=template.delete")
    assert "Nenhuma entrada encontrada" in empty.text


def test_the_page_goes_back_fifty_at_a_time(client, db, people):
    for n in range(55):
        record(db, action="contact.update", subject_type="contact", subject_id=n, actor_id=people["admin"].id)
    db.commit()
    form = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "root", "password": "correct horse", "csrf_token": form})
    first = client.get("/audit?action=contact.update").text
    assert first.count('data-action="contact.update"') == 50 and 'id="audit-older"' in first
    older = re.search(r'href="(/audit\?[^"]+)" id="audit-older"', first)
    second = client.get(older.group(1).replace("&amp;", "&")).text
    subjects = re.findall(r'data-role="subject">Contato #(\d+)<', second)
    assert subjects == ["4", "3", "2", "1", "0"] and 'id="audit-older"' not in second and 'id="audit-newest"' in second


@pytest.fixture(scope="module")
def sqlite_only(tmp_path_factory):
    """The plan is read from SQLite's EXPLAIN QUERY PLAN (PostgreSQL's planner picks by table size)."""
    from tests.conftest import _migrated

    source = _migrated("sqlite", tmp_path_factory)
    yield next(source)
    next(source, None)


@pytest.mark.parametrize("filters", [{}, {"actor_id": 1}, {"action": "contact.update"},
                                     {"subject_type": "contact", "subject_id": 7}])
def test_each_filter_reads_its_page_through_an_index(sqlite_only, filters):
    """Millions of entries: a page must not sort or read the whole table."""
    from sqlalchemy import text as sql
    from sqlalchemy.orm import Session

    from contact_center.audit import queries

    with Session(sqlite_only) as session:
        query = queries._query(session, queries.AuditFilter(**filters)).order_by(AuditEntry.id.desc()).limit(50)
        compiled = query.compile(sqlite_only, compile_kwargs={"literal_binds": True})
        plan = " ".join(row[-1] for row in session.execute(sql(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "USE TEMP B-TREE" not in plan, plan  # no sort: the index gives the order
    assert filters == {} or "USING INDEX" in plan, plan
