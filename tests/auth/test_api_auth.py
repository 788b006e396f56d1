"""Every REST endpoint but health and webhooks needs a token: 401 without, 403 for the wrong role."""

from __future__ import annotations

from contact_center.auth import service as auth_service


def test_health_needs_no_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_no_token_is_401_with_a_hint(client):
    response = client.get("/api/contacts")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["error"]["message"]


def test_wrong_scheme_is_401(client, agent_headers):
    token = agent_headers["Authorization"].split()[1]
    response = client.get("/api/contacts", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401


def test_bad_token_is_401(client):
    response = client.get("/api/contacts", headers={"Authorization": "Bearer cc_not-a-real-token"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "invalid API token"


def test_revoked_token_is_401(client, db, make_user):
    user, clear = make_user("bruno")
    headers = {"Authorization": f"Bearer {clear}"}
    assert client.get("/api/me", headers=headers).status_code == 200
    token_id = auth_service.list_tokens(db, user)[0].id
    assert client.delete(f"/api/tokens/{token_id}", headers=headers).status_code == 200
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_deactivated_user_token_is_401(client, make_user, admin_headers):
    user, clear = make_user("carla")
    assert client.patch(f"/api/users/{user.id}", json={"active": False}, headers=admin_headers).status_code == 200
    assert client.get("/api/me", headers={"Authorization": f"Bearer {clear}"}).status_code == 401


def test_wrong_role_is_403(client, agent_headers, supervisor_headers):
    response = client.get("/api/users", headers=agent_headers)
    assert response.status_code == 403
    assert "admin" in response.json()["error"]["message"]
    assert client.get("/api/users", headers=supervisor_headers).status_code == 403
    created = client.post("/api/contacts", json={"name": "Ana"}, headers=agent_headers).json()
    assert client.delete(f"/api/contacts/{created['id']}", headers=agent_headers).status_code == 403
    assert client.delete(f"/api/contacts/{created['id']}", headers=supervisor_headers).status_code == 204


def test_admin_creates_user_and_token_is_shown_once(client, admin_headers):
    response = client.post(
        "/api/users", json={"username": "Joao", "name": "João", "password": "s3cret-pass", "role": "supervisor"},
        headers=admin_headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "joao" and body["role"] == "supervisor"
    assert "password" not in body and "password_hash" not in body

    created = client.post("/api/tokens", json={"name": "ERP"}, headers=admin_headers)
    assert created.status_code == 201
    assert created.json()["token"].startswith("cc_")
    listed = client.get("/api/tokens", headers=admin_headers).json()
    assert all("token" not in row and "token_hash" not in row for row in listed)


def test_duplicate_username_is_409(client, admin_headers):
    body = {"username": "dup", "password": "long enough"}
    assert client.post("/api/users", json=body, headers=admin_headers).status_code == 201
    response = client.post("/api/users", json=body, headers=admin_headers)
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "username"


def test_validation_error_never_echoes_the_password(client, admin_headers):
    response = client.post(
        "/api/users", json={"username": "x", "password": "short", "role": "king"}, headers=admin_headers
    )
    assert response.status_code == 422
    text = response.text
    assert "short" not in text.replace("at least", "")  # the value itself is never echoed
    fields = {problem["field"] for problem in response.json()["error"]["problems"]}
    assert fields == {"password", "role"}


def test_agent_cannot_revoke_someone_elses_token(client, db, make_user, agent_headers):
    other, _ = make_user("diego")
    token_id = auth_service.list_tokens(db, other)[0].id
    assert client.delete(f"/api/tokens/{token_id}", headers=agent_headers).status_code == 404
