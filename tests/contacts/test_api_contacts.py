from __future__ import annotations

import pytest


def test_create_read_update_delete(client, supervisor_headers):
    h = supervisor_headers
    created = client.post(
        "/api/contacts",
        json={"name": "Maria Souza", "mobile": "(48) 99191-0234", "document": "529.982.247-25", "email": "maria@example.com"},
        headers=h,
    )
    assert created.status_code == 201, created.text
    contact = created.json()
    assert contact["mobile"] == "(48) 99191-0234"
    assert contact["mobile_e164"] == "+5548991910234"
    assert contact["document"] == "52998224725"

    assert client.get(f"/api/contacts/{contact['id']}", headers=h).json()["name"] == "Maria Souza"
    updated = client.patch(f"/api/contacts/{contact['id']}", json={"phone": "(11) 3333-4444", "notes": "VIP"}, headers=h)
    assert updated.status_code == 200
    assert updated.json()["phone_e164"] == "+551133334444"
    assert updated.json()["mobile_e164"] == "+5548991910234"  # untouched

    assert client.delete(f"/api/contacts/{contact['id']}", headers=h).status_code == 204
    missing = client.get(f"/api/contacts/{contact['id']}", headers=h)
    assert missing.status_code == 404
    assert str(contact["id"]) in missing.json()["error"]["message"]


@pytest.mark.parametrize(
    "body,field,fragment",
    [
        ({"name": "X", "mobile": "12ab"}, "mobile", "12ab"),
        ({"name": "X", "document": "111.111.111-11"}, "document", "111.111.111-11"),
        ({"name": "X", "document": "529.982.247-26"}, "document", "check digit"),
        ({"name": ""}, "name", ""),
        ({"name": "X", "email": "not-an-email"}, "email", ""),
    ],
)
def test_bad_input_is_a_clear_422_and_stores_nothing(client, agent_headers, body, field, fragment):
    response = client.post("/api/contacts", json=body, headers=agent_headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error.get("field", field) == field or field in error["message"]
    assert fragment in error["message"]
    assert client.get("/api/contacts", headers=agent_headers).json()["total"] == 0


def test_bad_update_changes_nothing(client, agent_headers):
    contact = client.post("/api/contacts", json={"name": "Ana", "mobile": "11 90000-0001"}, headers=agent_headers).json()
    response = client.patch(
        f"/api/contacts/{contact['id']}", json={"name": "Ana Paula", "mobile": "not a phone"}, headers=agent_headers
    )
    assert response.status_code == 422
    again = client.get(f"/api/contacts/{contact['id']}", headers=agent_headers).json()
    assert again["name"] == "Ana" and again["mobile_e164"] == "+5511900000001"


def test_document_is_unique(client, agent_headers):
    client.post("/api/contacts", json={"name": "A", "document": "52998224725"}, headers=agent_headers)
    response = client.post("/api/contacts", json={"name": "B", "document": "529.982.247-25"}, headers=agent_headers)
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "document"


def test_list_search_and_pagination(client, agent_headers):
    for i in range(1, 8):
        client.post("/api/contacts", json={"name": f"Cliente {i}", "mobile": f"11 90000-000{i}"}, headers=agent_headers)
    page = client.get("/api/contacts", params={"limit": 3, "offset": 3}, headers=agent_headers).json()
    assert page["total"] == 7
    assert [c["name"] for c in page["items"]] == ["Cliente 4", "Cliente 5", "Cliente 6"]

    by_phone = client.get("/api/contacts", params={"search": "+55 (11) 90000-0005"}, headers=agent_headers).json()
    assert [c["name"] for c in by_phone["items"]] == ["Cliente 5"]
    by_name = client.get("/api/contacts", params={"search": "cliente 7"}, headers=agent_headers).json()
    assert by_name["total"] == 1
    too_big = client.get("/api/contacts", params={"limit": 1000}, headers=agent_headers)
    assert too_big.status_code == 422 and "limit" in too_big.json()["error"]["message"]


def test_a_name_search_ignores_case_and_takes_wildcards_as_written(client, agent_headers):
    for name, email in (("Ana_Paula Lima", "ana.lima@example.com"), ("AnaXPaula Reis", "reis@example.com"),
                        ("Loja 50% Off", "loja@example.com"), ("Loja 500 Ltda", "ltda@example.com")):
        assert client.post("/api/contacts", json={"name": name, "email": email}, headers=agent_headers).status_code == 201

    def names(text: str) -> set[str]:
        found = client.get("/api/contacts", params={"search": text}, headers=agent_headers)
        assert found.status_code == 200, found.text
        return {c["name"] for c in found.json()["items"]}

    assert names("ANA_PAULA") == {"Ana_Paula Lima"}  # "_" is an underscore, not any character
    assert names("50%") == {"Loja 50% Off"}  # "%" is a percent sign, not anything
    assert names("ana") == {"Ana_Paula Lima", "AnaXPaula Reis"}
    assert names("EXAMPLE.COM/") == set() and names("@EXAMPLE.COM") == {"Ana_Paula Lima", "AnaXPaula Reis",
                                                                       "Loja 50% Off", "Loja 500 Ltda"}


def test_find_by_phone_endpoint(client, agent_headers):
    client.post("/api/contacts", json={"name": "Maria", "mobile": "+55 48 99191-0234"}, headers=agent_headers)
    found = client.get("/api/contacts/by-phone", params={"phone": "554891910234"}, headers=agent_headers)
    assert found.status_code == 200 and found.json()["name"] == "Maria"
    missing = client.get("/api/contacts/by-phone", params={"phone": "11 90000-0009"}, headers=agent_headers)
    assert missing.status_code == 404
    bad = client.get("/api/contacts/by-phone", params={"phone": "abc"}, headers=agent_headers)
    assert bad.status_code == 422 and "abc" in bad.json()["error"]["message"]
